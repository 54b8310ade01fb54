async fn send_email(to: &str) -> bool {
    !to.is_empty()
}

async fn run() {
    let _ = stratacache::refresh!(send_email("a@b.c")).await;
}

fn main() {
    let _ = run();
}

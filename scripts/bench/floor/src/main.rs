//! `retail-bench-floor PORT`: the HTTP floor ([`retail_bench_floor::app`]) on axum's own server.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let port = std::env::args().nth(1).unwrap_or_else(|| "8001".to_owned());
    let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
    axum::serve(listener, retail_bench_floor::app()).await
}

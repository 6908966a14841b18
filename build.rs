//! Compiles the gRPC contract in `proto/` with protox (no system `protoc`) and
//! writes the descriptor set that server reflection serves.
use std::path::PathBuf;

use protox::prost::Message;

const PROTOS: &[&str] = &[
    "theatre/v1/auth.proto",
    "theatre/v1/catalog.proto",
    "theatre/v1/booking.proto",
    "theatre/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    let fds = protox::compile(PROTOS, ["proto"])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out_dir.join("theatre_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}

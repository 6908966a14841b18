//! Compiles the gRPC contract in `proto/` with protox (no system `protoc`),
//! writes the descriptor set that server reflection serves, and generates the
//! method catalogue (`build/catalogue.rs`) from the access and HTTP options
//! the contract declares, and the OpenAPI document (`build/openapi.rs`).
use std::path::PathBuf;

use protox::prost::Message;

#[path = "build/catalogue.rs"]
mod catalogue;
#[path = "build/openapi.rs"]
mod openapi;

const PROTOS: &[&str] = &[
    "theatre/v1/options.proto",
    "theatre/v1/auth.proto",
    "theatre/v1/catalog.proto",
    "theatre/v1/booking.proto",
    "theatre/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-changed=build");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(PROTOS)?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    let pool = compiler.descriptor_pool();
    let methods = catalogue::catalogue(&pool)?;
    std::fs::write(out_dir.join("methods.rs"), catalogue::render(&methods))?;
    std::fs::write(
        out_dir.join("openapi.json"),
        openapi::render(&pool, &methods),
    )?;
    let fds = compiler.file_descriptor_set();
    std::fs::write(out_dir.join("theatre_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}

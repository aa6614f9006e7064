//! Compiles `proto/tollgate/v1/quota.proto` with protox (pure Rust, no system `protoc`)
//! and generates the prost messages and the tonic client and server into `OUT_DIR`.
//!
//! Also writes the encoded `FileDescriptorSet` (with imports and source info, so gRPC
//! reflection can serve `google/protobuf/timestamp.proto` and the comments) to
//! `OUT_DIR/tollgate_v1_descriptor.bin`, which `src/lib.rs` embeds.

use std::{env, error::Error, fs, path::PathBuf};

use prost::Message;

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let proto = proto_root.join("tollgate/v1/quota.proto");
    println!("cargo:rerun-if-changed={}", proto.display());

    // `google/protobuf/*.proto` are built into protox, so only our own root is an include.
    let fds = protox::compile([&proto], [&proto_root])?;

    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(
        out_dir.join("tollgate_v1_descriptor.bin"),
        fds.encode_to_vec(),
    )?;

    // Well-known types (`google.protobuf.Timestamp`) map to `::prost_types` by default.
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    Ok(())
}

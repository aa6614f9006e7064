//! Generated gRPC types and services for tollgate's own API (tollgate.v1).
//!
//! - [`v1`]: the prost messages and enums of `proto/tollgate/v1/quota.proto`, with the
//!   tonic client ([`v1::quota_service_client::QuotaServiceClient`]) and server
//!   ([`v1::quota_service_server::QuotaServiceServer`]).
//! - [`FILE_DESCRIPTOR_SET`]: the encoded descriptor set (imports included) for
//!   registering gRPC reflection.
//!
//! The code is generated at build time by `build.rs` with protox, so no system `protoc`
//! is needed.

#![forbid(unsafe_code)]
#![deny(rust_2018_idioms)]

/// The `tollgate.v1` package: messages, enums, client and server.
#[allow(clippy::all, clippy::pedantic, missing_docs, rust_2018_idioms)]
pub mod v1 {
    tonic::include_proto!("tollgate.v1");
}

/// Encoded `google.protobuf.FileDescriptorSet` for `tollgate/v1/quota.proto` and its
/// imports, for `tonic_reflection::server::Builder::register_encoded_file_descriptor_set`.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tollgate_v1_descriptor.bin"));

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;

    /// `optional uint32 cost` keeps an explicit 0 apart from absent across the wire.
    #[test]
    fn optional_cost_zero_survives_round_trip() {
        let request = v1::CheckQuotaRequest {
            api_key: "k".to_owned(),
            cost: Some(0),
            ..Default::default()
        };
        let decoded = v1::CheckQuotaRequest::decode(request.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.cost, Some(0));
        assert_eq!(decoded, request);

        let absent = v1::CheckQuotaRequest::default();
        let decoded = v1::CheckQuotaRequest::decode(absent.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded.cost, None);
    }

    /// The embedded descriptor set decodes and names `tollgate.v1.QuotaService`.
    #[test]
    fn descriptor_set_names_quota_service() {
        let fds = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap();
        let services: Vec<String> = fds
            .file
            .iter()
            .flat_map(|file| {
                file.service
                    .iter()
                    .map(move |svc| format!("{}.{}", file.package(), svc.name()))
            })
            .collect();
        assert_eq!(services, ["tollgate.v1.QuotaService"]);
        assert!(fds
            .file
            .iter()
            .any(|file| file.name() == "google/protobuf/timestamp.proto"));
    }
}

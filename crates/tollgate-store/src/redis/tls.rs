//! TLS material for `rediss://`: a private CA to trust instead of the public roots, and a
//! client certificate and key for servers that ask for one (`tls-auth-clients yes`).
//!
//! The files are read and checked when the store is built, not when it first connects: the
//! redis crate parses them only at the first handshake, and a typo in a path or a key that
//! belongs to another certificate would then show up as a store that is "unavailable" at
//! every check instead of a refusal to start.

use crate::StoreError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};

/// Where the TLS files are; all unset means the public roots and no client certificate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RedisTlsFiles {
    /// PEM bundle of the CA certificates that sign the servers' certificates. When set, only
    /// these are trusted (the public roots are not); host names are still verified.
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate (chain) presented to servers that ask for one.
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file` (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

impl RedisTlsFiles {
    /// Whether any file is given.
    pub fn is_set(&self) -> bool {
        self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some()
    }

    /// Reads and checks the files: every one readable and PEM, the CA file with at least one
    /// usable certificate, the key the one of the client certificate. `None` when no file is
    /// given.
    pub(super) fn load(&self) -> Result<Option<redis::TlsCertificates>, StoreError> {
        if !self.is_set() {
            return Ok(None);
        }
        let root_cert = match &self.ca_file {
            Some(path) => {
                let pem = read(path, "CA")?;
                let certs = certificates(&pem, path, "CA")?;
                let mut roots = rustls::RootCertStore::empty();
                for cert in certs {
                    roots.add(cert).map_err(|e| {
                        config(format!(
                            "the Redis TLS CA file `{}` holds a certificate that cannot be a trust anchor: {e}",
                            path.display()
                        ))
                    })?;
                }
                Some(pem)
            }
            None => None,
        };
        let client_tls = match (&self.cert_file, &self.key_file) {
            (None, None) => None,
            (Some(_), None) | (None, Some(_)) => return Err(config(
                "a Redis TLS client certificate needs both the certificate file and the key file"
                    .into(),
            )),
            (Some(cert_path), Some(key_path)) => {
                let cert_pem = read(cert_path, "client certificate")?;
                let key_pem = read(key_path, "client key")?;
                let chain = certificates(&cert_pem, cert_path, "client certificate")?;
                let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| {
                    config(format!(
                        "the Redis TLS client key file `{}` holds no PEM private key (PKCS#8, PKCS#1 or SEC1): {e}",
                        key_path.display()
                    ))
                })?;
                check_pair(chain, key, cert_path, key_path)?;
                Some(redis::ClientTlsConfig {
                    client_cert: cert_pem,
                    client_key: key_pem,
                })
            }
        };
        Ok(Some(redis::TlsCertificates {
            client_tls,
            root_cert,
        }))
    }
}

fn config(message: String) -> StoreError {
    StoreError::Config(message)
}

fn read(path: &Path, what: &str) -> Result<Vec<u8>, StoreError> {
    std::fs::read(path).map_err(|e| {
        config(format!(
            "cannot read the Redis TLS {what} file `{}`: {e}",
            path.display()
        ))
    })
}

/// The certificates of a PEM file; an error if it holds none, since the redis crate would
/// take an empty CA file as "trust nothing" and an empty chain as no client certificate.
fn certificates(
    pem: &[u8],
    path: &Path,
    what: &str,
) -> Result<Vec<CertificateDer<'static>>, StoreError> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            config(format!(
                "the Redis TLS {what} file `{}` is not valid PEM: {e}",
                path.display()
            ))
        })?;
    if certs.is_empty() {
        return Err(config(format!(
            "the Redis TLS {what} file `{}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        )));
    }
    Ok(certs)
}

/// Refuses a key that is not the one of the certificate: servers would refuse every
/// handshake, with nothing in tollgate's logs to say why.
fn check_pair(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_path: &Path,
    key_path: &Path,
) -> Result<(), StoreError> {
    let provider = rustls::crypto::ring::default_provider();
    rustls::sign::CertifiedKey::from_der(chain, key, &provider)
        .map(|_| ())
        .map_err(|e| {
            let why = match e {
                rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch) => {
                    "is not the key of the certificate".to_string()
                }
                other => format!("cannot be used with the certificate: {other}"),
            };
            config(format!(
                "the Redis TLS client key `{}` {why} `{}`",
                key_path.display(),
                cert_path.display()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No file given: nothing to load, and the redis crate keeps its defaults.
    #[test]
    fn nothing_given() {
        assert!(RedisTlsFiles::default().load().unwrap().is_none());
    }

    /// A certificate without its key (or the reverse) is refused before any file is read.
    #[test]
    fn cert_needs_key() {
        let files = RedisTlsFiles {
            cert_file: Some("/nonexistent/cert.pem".into()),
            ..Default::default()
        };
        let e = files.load().unwrap_err().to_string();
        assert!(
            e.contains("both the certificate file and the key file"),
            "{e}"
        );
    }

    /// An unreadable CA file names the file and the reason.
    #[test]
    fn unreadable_ca() {
        let files = RedisTlsFiles {
            ca_file: Some("/nonexistent/ca.pem".into()),
            ..Default::default()
        };
        let e = files.load().unwrap_err().to_string();
        assert!(
            e.contains("cannot read the Redis TLS CA file `/nonexistent/ca.pem`"),
            "{e}"
        );
    }

    /// A CA file without a PEM certificate is refused, not taken as "trust nothing".
    #[test]
    fn ca_not_pem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let files = RedisTlsFiles {
            ca_file: Some(path),
            ..Default::default()
        };
        let e = files.load().unwrap_err().to_string();
        assert!(e.contains("holds no PEM certificate"), "{e}");
    }
}

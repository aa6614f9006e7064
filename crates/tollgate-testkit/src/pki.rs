//! Certificates for TLS tests, made by the `openssl` command line in a directory the test
//! owns: a private CA, a server certificate it signs for 127.0.0.1, a client certificate it
//! signs, and a second CA that signed none of them.

use crate::HarnessError;
use std::path::Path;
use std::process::Command;

/// Runs `openssl` with `args` in `dir`.
fn openssl(dir: &Path, args: &[&str]) -> Result<(), HarnessError> {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => HarnessError::NotInstalled {
                program: "openssl",
                package: "openssl",
            },
            _ => HarnessError::Spawn {
                program: "openssl",
                source,
            },
        })?;
    if out.status.success() {
        return Ok(());
    }
    Err(HarnessError::ProgramFailed {
        program: "openssl",
        args: args.join(" "),
        status: out.status,
        stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
    })
}

/// A certificate for 127.0.0.1 that signs itself, in `dir` (`cert.pem`, `key.pem`).
pub fn self_signed(dir: &Path) -> Result<(), HarnessError> {
    self_signed_cert(
        dir,
        "/CN=127.0.0.1",
        &["-addext", "subjectAltName=IP:127.0.0.1"],
        "key.pem",
        "cert.pem",
    )
}

/// A self-signed certificate for `subject`, valid for a day, with its key, in `dir`.
fn self_signed_cert(
    dir: &Path,
    subject: &str,
    extra: &[&str],
    key: &str,
    cert: &str,
) -> Result<(), HarnessError> {
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", subject,
    ];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-keyout", key, "-out", cert]);
    openssl(dir, &args)
}

/// Writes into `dir`: a private CA (`ca.pem`, `ca.key`), a server certificate it signs for
/// 127.0.0.1 (`server.pem`, `server.key`), a client certificate it signs (`client.pem`,
/// `client.key`), and `other-ca.pem`, a CA that signed none of them. Valid for a day.
pub fn private_pki(dir: &Path) -> Result<(), HarnessError> {
    for ca in ["ca", "other-ca"] {
        self_signed_cert(
            dir,
            &format!("/CN=tollgate test {ca}"),
            &[],
            &format!("{ca}.key"),
            &format!("{ca}.pem"),
        )?;
    }
    for (file, text) in [
        ("server.ext", "subjectAltName=IP:127.0.0.1\n"),
        ("client.ext", "extendedKeyUsage=clientAuth\n"),
    ] {
        std::fs::write(dir.join(file), text)
            .map_err(|e| HarnessError::io(format!("write {file}"), e))?;
    }
    for (leaf, cn) in [("server", "127.0.0.1"), ("client", "tollgate")] {
        openssl(
            dir,
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={cn}"),
                "-keyout",
                &format!("{leaf}.key"),
                "-out",
                &format!("{leaf}.csr"),
            ],
        )?;
        openssl(
            dir,
            &[
                "x509",
                "-req",
                "-in",
                &format!("{leaf}.csr"),
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "1",
                "-extfile",
                &format!("{leaf}.ext"),
                "-out",
                &format!("{leaf}.pem"),
            ],
        )?;
    }
    Ok(())
}

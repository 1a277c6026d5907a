//! TLS material: a local certificate authority and a server certificate for
//! 127.0.0.1 and localhost (rcgen), and the rustls server configuration.
//! Clients verify the server against the CA; nothing ever turns checks off.

use std::{fs, io::BufReader, path::Path, sync::Arc};

use anyhow::Context;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

pub const CA_CERT_FILE: &str = "ca.pem";
pub const SERVER_CERT_FILE: &str = "server.pem";
pub const SERVER_KEY_FILE: &str = "server-key.pem";

/// Writes `ca.pem`, `server.pem` and `server-key.pem` (0600) into `dir` unless
/// all three exist already. The CA's private key is not kept: nothing else
/// is ever signed with it.
pub fn ensure_local_tls(dir: &Path) -> anyhow::Result<()> {
    let files = [CA_CERT_FILE, SERVER_CERT_FILE, SERVER_KEY_FILE].map(|f| dir.join(f));
    if files.iter().all(|f| f.exists()) {
        return Ok(());
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;

    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    ca_params.distinguished_name.push(DnType::CommonName, "FlexiBank local CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_key = KeyPair::generate()?;
    let ca_cert = ca_params.self_signed(&ca_key)?;

    let mut params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    params.distinguished_name.push(DnType::CommonName, "FlexiBank server");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca_cert, &ca_key)?;

    fs::write(&files[0], ca_cert.pem())?;
    fs::write(&files[1], cert.pem())?;
    write_private(&files[2], key.serialize_pem().as_bytes())?;
    Ok(())
}

/// Writes a file only its owner may read (0600).
pub use flexibank_consortium::pki::write_private;

pub fn server_config(cert_path: &Path, key_path: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let certs = rustls_pemfile::certs(&mut BufReader::new(
        fs::File::open(cert_path).with_context(|| format!("opening {}", cert_path.display()))?,
    ))
    .collect::<Result<Vec<_>, _>>()?;
    let key = rustls_pemfile::private_key(&mut BufReader::new(
        fs::File::open(key_path).with_context(|| format!("opening {}", key_path.display()))?,
    ))?
    .with_context(|| format!("no private key in {}", key_path.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

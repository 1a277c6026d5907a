//! The consortium's PKI: one CA (rcgen) that signs the switch's server
//! certificate and one client certificate per bank, the mutual-TLS rustls
//! server configuration of the switch, and the client side a bank uses.
//!
//! A bank is known by its certificate alone: the DNS name
//! `b<bank_id>.banks.flexibank.internal` in its subject alternative names.
//! `cert_names_bank` checks that name with rustls-webpki, the same code that
//! checks server names, so no X.509 parser of our own decides who a peer is.

use std::{
    fs,
    io::BufReader,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use rcgen::{BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

pub const CA_CERT_FILE: &str = "ca.pem";
pub const CA_KEY_FILE: &str = "ca-key.pem";
pub const SWITCH_CERT_FILE: &str = "switch.pem";
pub const SWITCH_KEY_FILE: &str = "switch-key.pem";
/// The parent of every bank's name; only the CA hands out names under it.
pub const BANK_NAME_SUFFIX: &str = "banks.flexibank.internal";
/// The name every switch certificate carries, whatever other names it has:
/// a bank's switch-only listener accepts exactly the certificates that name it.
pub const SWITCH_NAME: &str = "switch.flexibank.internal";
/// The names the switch answers to unless told otherwise (a local consortium).
pub const DEFAULT_SWITCH_NAMES: [&str; 2] = ["localhost", "127.0.0.1"];

/// A bank id: exactly 8 ASCII digits ("00000001").
pub fn is_bank_id(bank_id: &str) -> bool {
    bank_id.len() == 8 && bank_id.bytes().all(|b| b.is_ascii_digit())
}

/// The DNS name a bank's certificate carries: `b00000001.banks.flexibank.internal`.
pub fn bank_name_for(bank_id: &str) -> String {
    format!("b{bank_id}.{BANK_NAME_SUFFIX}")
}

pub fn bank_cert_file(bank_id: &str) -> String {
    format!("bank-{bank_id}.pem")
}

pub fn bank_key_file(bank_id: &str) -> String {
    format!("bank-{bank_id}-key.pem")
}

/// The CA's parameters. They are rebuilt, identically, each time the CA
/// signs: with the same key and the same subject, a certificate signed by the
/// rebuilt CA chains to `ca.pem` (rcgen 0.13 cannot read a certificate back
/// without x509-parser, and we need nothing from it but its name and key).
fn ca_params() -> anyhow::Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new())?;
    // Constrained(0): the CA signs end-entity certificates only, never another CA.
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(DnType::CommonName, "FlexiBank consortium CA");
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    Ok(params)
}

/// Writes `ca.pem` and `ca-key.pem` (0600) into `dir` unless `ca.pem` exists.
/// Returns whether it made a new CA. A CA is never replaced: every bank's
/// certificate chains to it.
pub fn init_ca(dir: &Path) -> anyhow::Result<bool> {
    let (cert_path, key_path) = (dir.join(CA_CERT_FILE), dir.join(CA_KEY_FILE));
    if cert_path.exists() {
        return Ok(false);
    }
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let key = KeyPair::generate()?;
    let cert = ca_params()?.self_signed(&key)?;
    // The key first: a ca.pem without its key would be a CA nobody can sign with.
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    fs::write(&cert_path, cert.pem()).with_context(|| format!("writing {}", cert_path.display()))?;
    Ok(true)
}

fn load_ca(dir: &Path) -> anyhow::Result<(Certificate, KeyPair)> {
    let key_path = dir.join(CA_KEY_FILE);
    let pem = fs::read_to_string(&key_path).with_context(|| format!("reading {} (run `pki init` first)", key_path.display()))?;
    let key = KeyPair::from_pem(&pem).with_context(|| format!("parsing {}", key_path.display()))?;
    let cert = ca_params()?.self_signed(&key)?;
    Ok((cert, key))
}

/// Signs `params` with the CA of `dir` and writes `<stem>.pem` and `<stem>-key.pem` (0600).
fn issue(dir: &Path, mut params: CertificateParams, cert_file: &str, key_file: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    let (ca_cert, ca_key) = load_ca(dir)?;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let key = KeyPair::generate()?;
    let cert = params.signed_by(&key, &ca_cert, &ca_key)?;
    let (cert_path, key_path) = (dir.join(cert_file), dir.join(key_file));
    write_private(&key_path, key.serialize_pem().as_bytes())?;
    fs::write(&cert_path, cert.pem()).with_context(|| format!("writing {}", cert_path.display()))?;
    Ok((cert_path, key_path))
}

/// The switch's certificate for `names` plus `SWITCH_NAME` (DNS names or IP addresses;
/// `DEFAULT_SWITCH_NAMES` when empty). Issuing again replaces it.
pub fn issue_switch_cert(dir: &Path, names: &[String]) -> anyhow::Result<(PathBuf, PathBuf)> {
    let mut names: Vec<String> = if names.is_empty() { DEFAULT_SWITCH_NAMES.iter().map(|n| n.to_string()).collect() } else { names.to_vec() };
    if !names.iter().any(|n| n == SWITCH_NAME) {
        names.push(SWITCH_NAME.to_string());
    }
    let mut params = CertificateParams::new(names)?;
    params.distinguished_name.push(DnType::CommonName, "FlexiBank switch");
    // Server to the banks' calls, client in its own calls to their switch-only listeners.
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
    issue(dir, params, SWITCH_CERT_FILE, SWITCH_KEY_FILE)
}

/// A bank's certificate: its name as the one DNS SAN, and a readable CN for
/// logs; ClientAuth for its calls to the switch, ServerAuth for its
/// switch-only listener (the switch connects to it by that name). Issuing again replaces it (the old one
/// stays valid until it expires: there is no revocation in this slice).
pub fn issue_bank_cert(dir: &Path, bank_id: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
    anyhow::ensure!(is_bank_id(bank_id), "a bank id is 8 digits, not {bank_id:?}");
    let mut params = CertificateParams::new(vec![bank_name_for(bank_id)])?;
    params.distinguished_name.push(DnType::CommonName, format!("FlexiBank bank {bank_id}"));
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth, ExtendedKeyUsagePurpose::ServerAuth];
    issue(dir, params, &bank_cert_file(bank_id), &bank_key_file(bank_id))
}

pub fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::{io::Write, os::unix::fs::OpenOptionsExt};
    let mut file =
        fs::OpenOptions::new().create(true).write(true).truncate(true).mode(0o600).open(path).with_context(|| format!("writing {}", path.display()))?;
    file.write_all(bytes)?;
    Ok(())
}

fn read_certs(path: &Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file)).collect::<Result<Vec<_>, _>>()?;
    anyhow::ensure!(!certs.is_empty(), "no certificate in {}", path.display());
    Ok(certs)
}

fn read_key(path: &Path) -> anyhow::Result<PrivateKeyDer<'static>> {
    let file = fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))?.with_context(|| format!("no private key in {}", path.display()))
}

/// The switch's TLS: its certificate, and a client certificate REQUIRED and
/// verified against the consortium CA only. A connection without one, or
/// with one from another CA, fails in the handshake: no HTTP is spoken.
pub fn server_config_mtls(ca: &Path, cert: &Path, key: &Path) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for ca_cert in read_certs(ca)? {
        roots.add(ca_cert).with_context(|| format!("adding {} as a root", ca.display()))?;
    }
    let verifier =
        rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build().context("client certificate verifier")?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(verifier)
        .with_single_cert(read_certs(cert)?, read_key(key)?)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A bank's identity for reqwest: its key and certificate in one PEM.
pub fn client_identity(cert: &Path, key: &Path) -> anyhow::Result<reqwest::Identity> {
    let mut pem = fs::read(key).with_context(|| format!("reading {}", key.display()))?;
    pem.push(b'\n');
    pem.extend(fs::read(cert).with_context(|| format!("reading {}", cert.display()))?);
    reqwest::Identity::from_pem(&pem).context("bank identity")
}

/// An HTTPS client that trusts only the consortium CA (no system roots, no
/// plain HTTP) and presents `identity` when it has one.
pub fn switch_client(ca: &Path, identity: Option<reqwest::Identity>, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    Ok(client_builder(ca, identity, timeout)?.build()?)
}

/// The client a bank talks to the switch with, from the files `issue_bank_cert` wrote into `dir`.
pub fn bank_client(dir: &Path, ca: &Path, bank_id: &str, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let identity = client_identity(&dir.join(bank_cert_file(bank_id)), &dir.join(bank_key_file(bank_id)))?;
    switch_client(ca, Some(identity), timeout)
}

/// Whether the (already verified) end-entity certificate `cert_der` names
/// bank `bank_id`, that is, may act for it. The CA issues no wildcard names,
/// so a name matches exactly one bank.
pub fn cert_names_bank(cert_der: &[u8], bank_id: &str) -> bool {
    is_bank_id(bank_id) && cert_names(cert_der, &bank_name_for(bank_id))
}

/// Whether the (already verified) certificate is the switch's.
pub fn cert_names_switch(cert_der: &[u8]) -> bool {
    cert_names(cert_der, SWITCH_NAME)
}

fn cert_names(cert_der: &[u8], dns_name: &str) -> bool {
    let der = CertificateDer::from(cert_der);
    let Ok(cert) = webpki::EndEntityCert::try_from(&der) else { return false };
    let Ok(name) = ServerName::try_from(dns_name.to_string()) else { return false };
    cert.verify_is_valid_for_subject_name(&name).is_ok()
}

/// The name an operator's certificate carries: the switch's read-only operator
/// routes (every position, any payment) accept exactly the certificates that name it.
pub const OPERATOR_NAME: &str = "operator.flexibank.internal";
pub const OPERATOR_CERT_FILE: &str = "operator.pem";
pub const OPERATOR_KEY_FILE: &str = "operator-key.pem";

/// The operator's client certificate (ClientAuth only: an operator never serves).
/// Issuing again replaces it.
pub fn issue_operator_cert(dir: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let mut params = CertificateParams::new(vec![OPERATOR_NAME.to_string()])?;
    params.distinguished_name.push(DnType::CommonName, "FlexiBank operator");
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    issue(dir, params, OPERATOR_CERT_FILE, OPERATOR_KEY_FILE)
}

/// Whether the (already verified) certificate is an operator's.
pub fn cert_names_operator(cert_der: &[u8]) -> bool {
    cert_names(cert_der, OPERATOR_NAME)
}

/// An HTTPS client builder that trusts only the consortium CA (no system
/// roots, no plain HTTP) and presents `identity` when it has one; for a
/// caller that adds its own settings (the switch pins each bank's name to the
/// address the bank registered).
pub fn client_builder(ca: &Path, identity: Option<reqwest::Identity>, timeout: Duration) -> anyhow::Result<reqwest::ClientBuilder> {
    let ca_pem = fs::read(ca).with_context(|| format!("reading {}", ca.display()))?;
    let mut builder = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca_pem)?)
        .tls_built_in_root_certs(false)
        .https_only(true)
        .timeout(timeout);
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    Ok(builder)
}

/// The operator's client, from the files `issue_operator_cert` wrote into `dir`.
pub fn operator_client(dir: &Path, ca: &Path, timeout: Duration) -> anyhow::Result<reqwest::Client> {
    let identity = client_identity(&dir.join(OPERATOR_CERT_FILE), &dir.join(OPERATOR_KEY_FILE))?;
    switch_client(ca, Some(identity), timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(label: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("flexibank-pki-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn der_of(path: &Path) -> Vec<u8> {
        read_certs(path).unwrap().remove(0).to_vec()
    }

    #[test]
    fn a_bank_certificate_names_its_bank_only() {
        let dir = temp_dir("names");
        assert!(init_ca(&dir).unwrap());
        assert!(!init_ca(&dir).unwrap(), "the CA is made once");
        let (cert, _) = issue_bank_cert(&dir, "00000001").unwrap();
        let der = der_of(&cert);
        assert!(cert_names_bank(&der, "00000001"));
        assert!(!cert_names_bank(&der, "00000002"));
        assert!(!cert_names_bank(&der, "0000001"), "not a bank id");
        assert!(!cert_names_bank(b"not a certificate", "00000001"));
        let (switch, _) = issue_switch_cert(&dir, &[]).unwrap();
        assert!(!cert_names_bank(&der_of(&switch), "00000001"));
        assert!(issue_bank_cert(&dir, "1").is_err());
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(fs::metadata(dir.join(CA_KEY_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        server_config_mtls(&dir.join(CA_CERT_FILE), &dir.join(SWITCH_CERT_FILE), &dir.join(SWITCH_KEY_FILE)).unwrap();
        client_identity(&cert, &dir.join(bank_key_file("00000001"))).unwrap();
        let _ = fs::remove_dir_all(&dir);
    }
}

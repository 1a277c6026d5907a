//! Local stand-ins for the providers, so the whole flow can be seen without
//! an account anywhere: an SMTP sink speaking STARTTLS and a receiver of
//! Twilio's Messages API shape, both over the stack's own certificate, both
//! keeping what they get in memory and (for `make run`) appending it as JSON
//! lines to `<dir>/email.jsonl` and `<dir>/sms.jsonl`.

use std::{
    net::SocketAddr,
    path::PathBuf,
    sync::{Arc, Mutex},
};

use anyhow::Context;
use axum::{
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    routing::post,
    Form, Router,
};
use serde::Serialize;
use tokio::{
    io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

/// One message a sink accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub channel: &'static str,
    pub at: chrono::DateTime<chrono::Utc>,
    pub to: String,
    pub event_id: String,
    pub body: String,
}

#[derive(Clone)]
pub struct Inbox {
    pub received: Arc<Mutex<Vec<Received>>>,
    out_dir: Option<PathBuf>,
}

impl Inbox {
    pub fn new(out_dir: Option<PathBuf>) -> Inbox {
        Inbox { received: Arc::default(), out_dir }
    }

    fn keep(&self, message: Received) {
        if let Some(dir) = &self.out_dir {
            let line = serde_json::to_string(&message).expect("JSON") + "\n";
            let file = dir.join(format!("{}.jsonl", message.channel));
            let written = std::fs::create_dir_all(dir).and_then(|_| {
                use std::io::Write;
                std::fs::OpenOptions::new().create(true).append(true).open(&file)?.write_all(line.as_bytes())
            });
            if let Err(e) = written {
                tracing::warn!("local receiver: writing {}: {e}", file.display());
            }
        }
        self.received.lock().unwrap().push(message);
    }
}

/// Lines an SMTP session may send before it must end; a message's size limit.
const MAX_SMTP_LINES: usize = 100_000;
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;

pub async fn start_smtp_sink(listen: SocketAddr, tls: Arc<rustls::ServerConfig>, inbox: Inbox) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(listen).await.with_context(|| format!("SMTP sink on {listen}"))?;
    let addr = listener.local_addr()?;
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, inbox) = (acceptor.clone(), inbox.clone());
            tokio::spawn(async move {
                if let Err(e) = smtp_session(stream, acceptor, inbox).await {
                    tracing::debug!("SMTP sink session: {e:#}");
                }
            });
        }
    });
    Ok(addr)
}

enum Next {
    StartTls,
    Quit,
}

async fn smtp_session(stream: TcpStream, acceptor: tokio_rustls::TlsAcceptor, inbox: Inbox) -> anyhow::Result<()> {
    let mut plain = BufReader::new(stream);
    plain.get_mut().write_all(b"220 flexibank-sink ESMTP\r\n").await?;
    if let Next::StartTls = smtp_commands(&mut plain, false, &inbox).await? {
        let tls = acceptor.accept(plain.into_inner()).await?;
        smtp_commands(&mut BufReader::new(tls), true, &inbox).await?;
    }
    Ok(())
}

/// Speaks just enough SMTP for a client that insists on STARTTLS: nothing
/// is accepted before the connection is encrypted.
async fn smtp_commands<S: AsyncBufRead + AsyncWrite + Unpin>(stream: &mut S, encrypted: bool, inbox: &Inbox) -> anyhow::Result<Next> {
    let (mut to, mut line) = (Vec::new(), String::new());
    for _ in 0..MAX_SMTP_LINES {
        line.clear();
        if stream.read_line(&mut line).await? == 0 {
            return Ok(Next::Quit);
        }
        let verb = line.split_whitespace().next().unwrap_or("").to_ascii_uppercase();
        let reply: &[u8] = match verb.as_str() {
            "EHLO" | "HELO" if encrypted => b"250-flexibank-sink\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME\r\n",
            "EHLO" | "HELO" => b"250-flexibank-sink\r\n250 STARTTLS\r\n",
            "STARTTLS" if !encrypted => {
                stream.write_all(b"220 ready to start TLS\r\n").await?;
                return Ok(Next::StartTls);
            }
            "QUIT" => {
                stream.write_all(b"221 bye\r\n").await?;
                return Ok(Next::Quit);
            }
            "NOOP" | "RSET" => b"250 ok\r\n",
            _ if !encrypted => b"530 must issue STARTTLS first\r\n",
            "AUTH" => b"235 accepted\r\n",
            "MAIL" => {
                to.clear();
                b"250 ok\r\n"
            }
            "RCPT" => {
                to.push(line.trim().trim_start_matches(|c: char| c != '<').trim_matches(|c| c == '<' || c == '>').to_string());
                b"250 ok\r\n"
            }
            "DATA" => {
                stream.write_all(b"354 end with <CRLF>.<CRLF>\r\n").await?;
                let mut data = Vec::new();
                loop {
                    let mut chunk = Vec::new();
                    if stream.read_until(b'\n', &mut chunk).await? == 0 || data.len() > MAX_MESSAGE_BYTES {
                        anyhow::bail!("message cut off or too large");
                    }
                    if chunk == b".\r\n" || chunk == b".\n" {
                        break;
                    }
                    data.extend_from_slice(chunk.strip_prefix(b".").filter(|_| chunk.starts_with(b"..")).unwrap_or(&chunk));
                }
                let text = String::from_utf8_lossy(&data).into_owned();
                let event_id = text
                    .lines()
                    .find_map(|l| l.strip_prefix("Message-ID: <").or_else(|| l.strip_prefix("Message-Id: <")))
                    .and_then(|rest| rest.split('@').next())
                    .unwrap_or("")
                    .to_string();
                inbox.keep(Received { channel: "email", at: chrono::Utc::now(), to: to.join(","), event_id, body: text });
                b"250 queued\r\n"
            }
            _ => b"502 not implemented\r\n",
        };
        stream.write_all(reply).await?;
        stream.flush().await?;
    }
    let _ = stream.read(&mut [0u8; 1]).await;
    anyhow::bail!("too many commands")
}

#[derive(Clone)]
struct SmsReceiver {
    inbox: Inbox,
    account_sid: String,
    auth_token: String,
}

async fn sms_message(
    State(receiver): State<SmsReceiver>,
    Path(sid): Path<String>,
    headers: HeaderMap,
    Form(form): Form<std::collections::HashMap<String, String>>,
) -> (StatusCode, &'static str) {
    use base64::Engine;
    let expected = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", receiver.account_sid, receiver.auth_token)));
    if sid != receiver.account_sid || headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return (StatusCode::UNAUTHORIZED, r#"{"code":20003,"message":"Authenticate"}"#);
    }
    let field = |k: &str| form.get(k).cloned().unwrap_or_default();
    let event_id = headers.get("x-flexibank-event-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    receiver.inbox.keep(Received { channel: "sms", at: chrono::Utc::now(), to: field("To"), event_id, body: field("Body") });
    (StatusCode::CREATED, r#"{"sid":"SMlocal","status":"queued"}"#)
}

pub async fn start_sms_receiver(
    listen: SocketAddr,
    tls: Arc<rustls::ServerConfig>,
    inbox: Inbox,
    account_sid: &str,
    auth_token: &str,
) -> anyhow::Result<SocketAddr> {
    let receiver = SmsReceiver { inbox, account_sid: account_sid.into(), auth_token: auth_token.into() };
    let app = Router::new().route("/2010-04-01/Accounts/{sid}/Messages.json", post(sms_message)).with_state(receiver);
    let listener = std::net::TcpListener::bind(listen).with_context(|| format!("SMS receiver on {listen}"))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let server = axum_server::from_tcp_rustls(listener, axum_server::tls_rustls::RustlsConfig::from_config(tls)).serve(app.into_make_service());
    tokio::spawn(server);
    Ok(addr)
}

/// `make run`'s receivers, when `notifications.local_receivers_dir` is set:
/// the SMTP sink and the SMS receiver on loopback, writing into that directory.
pub async fn start_local(config: &crate::config::NotificationsConfig, tls: Arc<rustls::ServerConfig>) -> anyhow::Result<()> {
    let Some(dir) = &config.local_receivers_dir else { return Ok(()) };
    let inbox = Inbox::new(Some(dir.clone()));
    let smtp = start_smtp_sink(([127, 0, 0, 1], config.local_smtp_port).into(), tls.clone(), inbox.clone()).await?;
    let (sid, token) = (config.sms_account_sid.clone().unwrap_or_default(), config.sms_auth_token.clone().unwrap_or_default());
    let sms = start_sms_receiver(([127, 0, 0, 1], config.local_sms_port).into(), tls, inbox, &sid, &token).await?;
    tracing::info!(%smtp, %sms, dir = %dir.display(), "local notification receivers");
    Ok(())
}

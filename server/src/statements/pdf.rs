//! A statement as PDF, with `printpdf` (pure Rust, maintained; only its
//! writer: no HTML layout, no images). All text is set in one font, DejaVu
//! Sans Mono (titles are drawn filled and stroked, a bold look without a
//! second font), read at the first statement from `FONT_DIR` (Debian's
//! fonts-dejavu-core; `FLEXIBANK_STATEMENT_FONT_DIR` elsewhere) and embedded
//! whole (printpdf subsets only with its HTML layout feature, which this does
//! not take): a statement is about 200 KB plus its pages. Any holder's name or
//! memo that DejaVu covers prints as written and `pdftotext` reads it back
//! (the built-in PDF fonts would print Latin-1 only). A missing font fails
//! the statement with a clear error (and a log line naming the file), never a
//! PDF without text.
//!
//! A4 pages: the first has the header (bank, account, holders, period), the
//! summary (opening and closing balances, money in and out) and a chart of
//! the running balance over the month (PDF path operations); then the
//! entries, one row each (a long memo or counterparty wraps onto more lines
//! of the same row), page after page, with the bank, account, period and
//! the column heads repeated on each and "Page n of N" at the foot.
//! Amounts are the ledger's exact decimals as text; floats are only
//! coordinates.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use printpdf::{
    Color, FontId, Greyscale, Line as PdfLine, LinePoint, Op, PaintMode, ParsedFont, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Polygon,
    PolygonRing, Pt, Rgb, TextItem, TextMatrix, TextRenderingMode, WindingOrder,
};
use rust_decimal::{prelude::ToPrimitive, Decimal};

use super::{Line, Statement};
use crate::error::{ApiError, ApiResult, Code};

/// Where Debian's fonts-dejavu-core puts the fonts.
pub const FONT_DIR: &str = "/usr/share/fonts/truetype/dejavu";
const MONO: &str = "DejaVuSansMono.ttf";
/// DejaVu Sans Mono's advance, in em (1233 of 2048 units).
const MONO_ADVANCE: f32 = 1233.0 / 2048.0;

const PAGE_W: f32 = 595.28;
const PAGE_H: f32 = 841.89;
const MARGIN: f32 = 40.0;
/// The entries' size and leading.
const BODY: f32 = 8.0;
const LEADING: f32 = 10.5;
/// The header's size and leading.
const INFO: f32 = 9.0;
const INFO_LEADING: f32 = 12.0;
const CHART_H: f32 = 120.0;
/// The chart draws at most this many steps (one per horizontal slot, min and max kept).
const CHART_SLOTS: usize = 600;

fn font_dir() -> std::path::PathBuf {
    std::env::var_os("FLEXIBANK_STATEMENT_FONT_DIR")
        .filter(|d| !d.is_empty())
        .map(Into::into)
        .unwrap_or_else(|| FONT_DIR.into())
}

fn load_font(name: &str) -> ApiResult<ParsedFont> {
    let path = font_dir().join(name);
    let missing = |why: String| {
        tracing::error!(font = %path.display(), "statements cannot be made: {why} (install the Debian package fonts-dejavu-core, or set FLEXIBANK_STATEMENT_FONT_DIR)");
        ApiError::new(
            Code::Internal,
            format!("statements cannot be made on this server now: its font {name} is missing or unreadable; the operators have been told"),
        )
    };
    let bytes = std::fs::read(&path).map_err(|e| missing(format!("{e}")))?;
    ParsedFont::from_bytes(&bytes, 0, &mut Vec::new()).ok_or_else(|| missing("not a TrueType font".into()))
}

/// The font, read once (a failure is not remembered: installing it fixes the next statement).
fn font() -> ApiResult<Arc<ParsedFont>> {
    static FONT: Mutex<Option<Arc<ParsedFont>>> = Mutex::new(None);
    let mut cached = FONT.lock().expect("font lock");
    if let Some(font) = cached.as_ref() {
        return Ok(font.clone());
    }
    let font = Arc::new(load_font(MONO)?);
    *cached = Some(font.clone());
    Ok(font)
}

/// "1250.50", always two decimals.
pub fn amount(value: Decimal) -> String {
    let mut value = value;
    value.rescale(2);
    value.to_string()
}

/// "+1250.50" or "-1250.50".
pub fn signed(value: Decimal) -> String {
    if value > Decimal::ZERO {
        format!("+{}", amount(value))
    } else {
        amount(value)
    }
}

fn kind_label(kind: &str) -> &str {
    match kind {
        "deposit" => "Deposit",
        "withdrawal" => "Withdrawal",
        "transfer_in" => "Transfer in",
        "transfer_out" => "Transfer out",
        "interbank_in" => "Interbank in",
        "interbank_out" => "Interbank out",
        "settlement" => "Settlement",
        other => other,
    }
}

fn capitalized(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

fn utc_time(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

fn long_time(at: DateTime<Utc>) -> String {
    at.format("%-d %B %Y %H:%M UTC").to_string()
}

/// Splits `text` into lines of at most `width` characters, at spaces where it can.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split(' ') {
        let mut word: Vec<char> = word.chars().collect();
        let used = current.chars().count();
        if used > 0 && used + 1 + word.len() <= width {
            current.push(' ');
            current.extend(word.iter());
            continue;
        }
        if used > 0 {
            lines.push(std::mem::take(&mut current));
        }
        while word.len() > width {
            lines.push(word.drain(..width).collect());
        }
        current = word.into_iter().collect();
    }
    if !current.is_empty() || lines.is_empty() {
        lines.push(current);
    }
    lines
}

fn pad_right(text: &str, width: usize) -> String {
    let len = text.chars().count();
    if len >= width {
        text.to_string()
    } else {
        format!("{text}{}", " ".repeat(width - len))
    }
}

fn pad_left(text: &str, width: usize) -> String {
    let len = text.chars().count();
    if len >= width {
        text.to_string()
    } else {
        format!("{}{text}", " ".repeat(width - len))
    }
}

/// The entries' columns, sized to the statement's widest values.
struct Columns {
    party: usize,
    memo: usize,
    amount: usize,
    balance: usize,
}

const TIME_W: usize = 19;
const KIND_W: usize = 13;
const PARTY_MAX: usize = 20;
const MEMO_MIN: usize = 12;

impl Columns {
    fn of(statement: &Statement) -> Columns {
        let per_line = ((PAGE_W - 2.0 * MARGIN) / (BODY * MONO_ADVANCE)).floor() as usize;
        let widest = |f: &dyn Fn(&Line) -> usize, head: usize| statement.lines.iter().map(f).max().unwrap_or(0).max(head);
        let party = widest(&|l| l.counterparty.as_deref().map_or(0, |p| p.chars().count()), "Counterparty".len()).min(PARTY_MAX);
        let amount = widest(&|l| signed(l.amount).len(), "Amount".len());
        let balance = widest(&|l| amount_len(l.balance_after), "Balance".len()).max(amount_len(statement.opening));
        let fixed = TIME_W + KIND_W + party + amount + balance + 5;
        Columns {
            party,
            memo: per_line.saturating_sub(fixed).max(MEMO_MIN),
            amount,
            balance,
        }
    }

    fn head(&self) -> String {
        self.row("Date (UTC)", "Kind", "Counterparty", "Memo", "Amount", "Balance")
    }

    fn row(&self, time: &str, kind: &str, party: &str, memo: &str, amount: &str, balance: &str) -> String {
        let text = format!(
            "{} {} {} {} {} {}",
            pad_right(time, TIME_W),
            pad_right(kind, KIND_W),
            pad_right(party, self.party),
            pad_right(memo, self.memo),
            pad_left(amount, self.amount),
            pad_left(balance, self.balance)
        );
        text.trim_end().to_string()
    }

    /// One entry: its first line, then the rest of a long memo or counterparty.
    fn lines(&self, line: &Line) -> Vec<String> {
        let memo = wrap(&line.memo, self.memo);
        let party = wrap(line.counterparty.as_deref().unwrap_or(""), self.party);
        (0..memo.len().max(party.len()))
            .map(|i| {
                let (memo, party) = (memo.get(i).map_or("", String::as_str), party.get(i).map_or("", String::as_str));
                if i == 0 {
                    self.row(
                        &utc_time(line.at),
                        kind_label(&line.kind),
                        party,
                        memo,
                        &signed(line.amount),
                        &amount(line.balance_after),
                    )
                } else {
                    self.row("", "", party, memo, "", "")
                }
            })
            .collect()
    }
}

fn amount_len(value: Decimal) -> usize {
    amount(value).len()
}

fn grey(level: f32) -> Color {
    Color::Greyscale(Greyscale {
        percent: level,
        icc_profile: None,
    })
}

fn point(x: f32, y: f32) -> LinePoint {
    LinePoint {
        p: Point { x: Pt(x), y: Pt(y) },
        bezier: false,
    }
}

/// One page's operations.
struct Page {
    ops: Vec<Op>,
    mono: FontId,
}

impl Page {
    fn new(mono: &FontId) -> Page {
        Page {
            ops: Vec::new(),
            mono: mono.clone(),
        }
    }

    fn mono(&mut self, size: f32, x: f32, y: f32, text: &str) {
        if text.is_empty() {
            return;
        }
        self.ops.extend([
            Op::StartTextSection,
            Op::SetFont {
                font: PdfFontHandle::External(self.mono.clone()),
                size: Pt(size),
            },
            Op::SetTextMatrix {
                matrix: TextMatrix::Translate(Pt(x), Pt(y)),
            },
            Op::ShowText {
                items: vec![TextItem::Text(text.to_string())],
            },
            Op::EndTextSection,
        ]);
    }

    /// Monospaced text ending at `right`.
    fn mono_right(&mut self, size: f32, right: f32, y: f32, text: &str) {
        let width = text.chars().count() as f32 * size * MONO_ADVANCE;
        self.mono(size, right - width, y, text);
    }

    /// Bold-looking text: filled and stroked with a thin outline.
    fn title(&mut self, size: f32, x: f32, y: f32, text: &str) {
        self.ops.push(Op::SaveGraphicsState);
        self.ops.push(Op::SetOutlineThickness { pt: Pt(size / 30.0) });
        self.ops.push(Op::SetOutlineColor { col: grey(0.0) });
        self.ops.push(Op::SetTextRenderingMode {
            mode: TextRenderingMode::FillStroke,
        });
        self.mono(size, x, y, text);
        self.ops.push(Op::SetTextRenderingMode { mode: TextRenderingMode::Fill });
        self.ops.push(Op::RestoreGraphicsState);
    }

    /// Many monospaced lines in one text object, each placed absolutely.
    fn mono_lines(&mut self, size: f32, x: f32, lines: &[(f32, String)]) {
        self.ops.push(Op::StartTextSection);
        self.ops.push(Op::SetFont {
            font: PdfFontHandle::External(self.mono.clone()),
            size: Pt(size),
        });
        for (y, text) in lines.iter().filter(|(_, t)| !t.is_empty()) {
            self.ops.push(Op::SetTextMatrix {
                matrix: TextMatrix::Translate(Pt(x), Pt(*y)),
            });
            self.ops.push(Op::ShowText {
                items: vec![TextItem::Text(text.clone())],
            });
        }
        self.ops.push(Op::EndTextSection);
    }

    fn stroke(&mut self, colour: Color, width: f32, points: Vec<LinePoint>, closed: bool) {
        self.ops.push(Op::SetOutlineColor { col: colour });
        self.ops.push(Op::SetOutlineThickness { pt: Pt(width) });
        self.ops.push(Op::DrawLine {
            line: PdfLine { points, is_closed: closed },
        });
    }

    fn fill_rect(&mut self, colour: Color, x: f32, y: f32, w: f32, h: f32) {
        self.ops.push(Op::SaveGraphicsState);
        self.ops.push(Op::SetFillColor { col: colour });
        self.ops.push(Op::DrawPolygon {
            polygon: Polygon {
                rings: vec![PolygonRing {
                    points: vec![point(x, y), point(x + w, y), point(x + w, y + h), point(x, y + h)],
                }],
                mode: PaintMode::Fill,
                winding_order: WindingOrder::NonZero,
            },
        });
        self.ops.push(Op::RestoreGraphicsState);
    }

    fn rule(&mut self, y: f32) {
        self.stroke(grey(0.6), 0.5, vec![point(MARGIN, y), point(PAGE_W - MARGIN, y)], false);
    }
}

/// The running balance over the month, as a stepped line.
fn chart(page: &mut Page, statement: &Statement, top: f32) -> f32 {
    let currency = &statement.currency;
    page.mono(INFO, MARGIN, top - INFO, &format!("Running balance ({currency}) over the month"));
    let labels_w = 5.0 + (amount_len(chart_max(statement)).max(amount_len(chart_min(statement))) as f32) * 7.0 * MONO_ADVANCE;
    let (x0, x1) = (MARGIN + labels_w + 4.0, PAGE_W - MARGIN);
    let (y1, y0) = (top - INFO - 8.0, top - INFO - 8.0 - CHART_H);
    page.stroke(grey(0.6), 0.5, vec![point(x0, y0), point(x1, y0), point(x1, y1), point(x0, y1)], true);

    let (low, high) = (chart_min(statement), chart_max(statement));
    let (low_f, high_f) = (low.to_f64().unwrap_or(0.0), high.to_f64().unwrap_or(0.0));
    let span = if high_f > low_f { high_f - low_f } else { 1.0 };
    let y_of = |v: Decimal| -> f32 {
        let v = v.to_f64().unwrap_or(0.0);
        let frac = if high_f > low_f { (v - low_f) / span } else { 0.5 };
        y0 + 6.0 + (frac as f32) * (CHART_H - 12.0)
    };
    let (start, end) = (statement.month.start(), statement.month.end());
    let month_us = (end - start).num_microseconds().unwrap_or(1).max(1) as f64;
    let x_of = |at: DateTime<Utc>| -> f32 {
        let frac = ((at - start).num_microseconds().unwrap_or(0) as f64 / month_us).clamp(0.0, 1.0);
        x0 + (frac as f32) * (x1 - x0)
    };

    // The lowest and highest balances, with their exact values.
    for (value, y) in [(high, y_of(high)), (low, y_of(low))] {
        page.stroke(grey(0.85), 0.4, vec![point(x0, y), point(x1, y)], false);
        page.mono_right(7.0, x0 - 4.0, y - 2.5, &amount(value));
        if low == high {
            break;
        }
    }
    // Days: the 1st, every 7th, and the end of the month.
    let days = statement.month.days();
    for day in (1..=days).filter(|d| d % 7 == 1 && *d + 3 <= days) {
        let x = x_of(start + chrono::Duration::days(i64::from(day - 1)));
        page.stroke(grey(0.6), 0.5, vec![point(x, y0), point(x, y0 - 3.0)], false);
        page.mono(7.0, x - 2.0, y0 - 11.0, &day.to_string());
    }
    page.mono_right(7.0, x1, y0 - 11.0, &days.to_string());

    // The line: steps at each entry, one slot's entries drawn as their span.
    let mut points = vec![point(x0, y_of(statement.opening))];
    let mut current = statement.opening;
    let lines = &statement.lines;
    let mut i = 0;
    while i < lines.len() {
        let slot = |at: DateTime<Utc>| (((x_of(at) - x0) / (x1 - x0)) * CHART_SLOTS as f32) as usize;
        let this = slot(lines[i].at);
        let x = x_of(lines[i].at);
        points.push(point(x, y_of(current)));
        let (mut lo, mut hi) = (lines[i].balance_after, lines[i].balance_after);
        let mut j = i;
        while j < lines.len() && slot(lines[j].at) == this {
            lo = lo.min(lines[j].balance_after);
            hi = hi.max(lines[j].balance_after);
            j += 1;
        }
        if j - i > 1 {
            points.push(point(x, y_of(lo)));
            points.push(point(x, y_of(hi)));
        }
        current = lines[j - 1].balance_after;
        points.push(point(x, y_of(current)));
        i = j;
    }
    points.push(point(x_of(statement.period_end), y_of(current)));
    page.stroke(
        Color::Rgb(Rgb {
            r: 0.05,
            g: 0.35,
            b: 0.65,
            icc_profile: None,
        }),
        1.2,
        points,
        false,
    );
    y0 - 30.0
}

fn chart_min(statement: &Statement) -> Decimal {
    statement.lines.iter().map(|l| l.balance_after).fold(statement.opening, Decimal::min)
}

fn chart_max(statement: &Statement) -> Decimal {
    statement.lines.iter().map(|l| l.balance_after).fold(statement.opening, Decimal::max)
}

/// The first page's header and summary; returns where the chart goes.
fn first_page_head(page: &mut Page, statement: &Statement) -> f32 {
    let mut y = PAGE_H - MARGIN - 16.0;
    page.title(16.0, MARGIN, y, &statement.bank_name);
    y -= 20.0;
    let to_date = if statement.to_date { " (statement to date)" } else { "" };
    page.title(11.0, MARGIN, y, &format!("Statement of account, {}{to_date}", statement.month.name()));
    y -= 8.0;
    page.rule(y);
    y -= INFO_LEADING + 2.0;

    let label_w = 17;
    let value_w = ((PAGE_W - 2.0 * MARGIN) / (INFO * MONO_ADVANCE)).floor() as usize - label_w;
    let mut kind = format!("{}, {}", capitalized(&statement.kind), statement.currency);
    if statement.status != "active" {
        kind.push_str(&format!(" ({})", statement.status));
    }
    let period = format!(
        "{} to {}{}",
        long_time(statement.period_start),
        long_time(statement.period_end),
        if statement.to_date { ", to date" } else { "" }
    );
    let holders = statement.owners.join(", ");
    let made = format!("{} UTC", utc_time(statement.generated_at));
    let times = "UTC: the month is counted in UTC, and every time here is UTC";
    let mut info: Vec<(f32, String)> = Vec::new();
    for (label, value) in [
        ("Account number", statement.account_number.as_str()),
        ("Kind, currency", kind.as_str()),
        (if statement.owners.len() > 1 { "Holders" } else { "Holder" }, holders.as_str()),
        ("Period", period.as_str()),
        ("Made", made.as_str()),
        ("Times", times),
    ] {
        for (i, part) in wrap(value, value_w).into_iter().enumerate() {
            let label = if i == 0 { label } else { "" };
            info.push((y, format!("{}{part}", pad_right(label, label_w))));
            y -= INFO_LEADING;
        }
    }
    page.mono_lines(INFO, MARGIN, &info);
    y -= 4.0;

    // The summary, on a light band.
    let credits = statement.lines.iter().filter(|l| l.amount > Decimal::ZERO).count();
    let debits = statement.lines.len() - credits;
    let figures = [
        ("Opening balance", amount(statement.opening), String::new()),
        (
            "Money in",
            amount(statement.money_in()),
            format!("{credits} credit{}", if credits == 1 { "" } else { "s" }),
        ),
        (
            "Money out",
            amount(statement.money_out()),
            format!("{debits} debit{}", if debits == 1 { "" } else { "s" }),
        ),
        ("Closing balance", amount(statement.closing()), String::new()),
    ];
    let width = figures.iter().map(|(_, v, _)| v.len()).max().unwrap_or(4);
    page.fill_rect(
        grey(0.94),
        MARGIN,
        y - 4.0 * INFO_LEADING + 6.0,
        PAGE_W - 2.0 * MARGIN,
        4.0 * INFO_LEADING + 4.0,
    );
    let mut summary = Vec::new();
    for (label, value, note) in figures {
        let text = format!("{}{} {}   {note}", pad_right(label, label_w), pad_left(&value, width), statement.currency);
        summary.push((y - 2.0, text.trim_end().to_string()));
        y -= INFO_LEADING;
    }
    page.mono_lines(INFO, MARGIN + 4.0, &summary);
    y - 10.0
}

/// A later page's header; returns where the entries start.
fn later_page_head(page: &mut Page, statement: &Statement) -> f32 {
    let y = PAGE_H - MARGIN - 10.0;
    page.title(10.0, MARGIN, y, &statement.bank_name);
    let to_date = if statement.to_date { ", to date" } else { "" };
    page.mono_right(
        BODY,
        PAGE_W - MARGIN,
        y,
        &format!("Account {}, {}{to_date} (UTC), continued", statement.account_number, statement.month.name()),
    );
    page.rule(y - 6.0);
    y - 6.0 - LEADING - 4.0
}

/// The column heads on a grey band; returns where the first entry goes.
fn table_head(page: &mut Page, columns: &Columns, y: f32) -> f32 {
    page.fill_rect(grey(0.9), MARGIN - 2.0, y - 3.0, PAGE_W - 2.0 * MARGIN + 4.0, LEADING + 1.0);
    page.mono(BODY, MARGIN, y, &columns.head());
    y - LEADING - 2.0
}

fn footer(page: &mut Page, statement: &Statement, number: usize, pages: usize) {
    let y = MARGIN - 16.0;
    page.rule(MARGIN - 6.0);
    page.mono(
        7.0,
        MARGIN,
        y,
        &format!("{} · account {} · {}", statement.bank_name, statement.account_number, statement.month),
    );
    page.mono_right(7.0, PAGE_W - MARGIN, y, &format!("Page {number} of {pages}"));
}

/// Renders the statement; CPU work (run it off the async threads).
pub fn render(statement: &Statement) -> ApiResult<Vec<u8>> {
    let font = font()?;
    let mut doc = PdfDocument::new(&format!("{} statement {} {}", statement.bank_name, statement.account_number, statement.month));
    if let Ok(made) = printpdf::OffsetDateTime::from_unix_timestamp(statement.generated_at.timestamp()) {
        let info = &mut doc.metadata.info;
        (info.creation_date, info.modification_date, info.metadata_date) = (made, made, made);
    }
    doc.metadata.info.producer = statement.bank_name.clone();
    let mono = doc.add_font(&font);
    let columns = Columns::of(statement);
    let bottom = MARGIN + 4.0;

    // Lay the rows out on pages first: the footer needs the number of pages.
    let mut pages: Vec<Page> = Vec::new();
    let mut page = Page::new(&mono);
    let y = first_page_head(&mut page, statement);
    let y = chart(&mut page, statement, y);
    let mut y = table_head(&mut page, &columns, y);
    let mut rows: Vec<(f32, String)> = Vec::new();
    let mut ends = vec![String::new()];
    if statement.lines.is_empty() {
        ends.push("No entries in this period.".into());
    }
    ends.push(format!(
        "Closing balance {} {} after {} entr{}. End of statement.",
        amount(statement.closing()),
        statement.currency,
        statement.lines.len(),
        if statement.lines.len() == 1 { "y" } else { "ies" }
    ));
    let blocks = statement.lines.iter().map(|line| columns.lines(line)).chain(std::iter::once(ends));
    for block in blocks {
        let height = block.len() as f32 * LEADING;
        if y - height < bottom && !rows.is_empty() {
            page.mono_lines(BODY, MARGIN, &rows);
            rows.clear();
            pages.push(page);
            page = Page::new(&mono);
            let top = later_page_head(&mut page, statement);
            y = table_head(&mut page, &columns, top);
        }
        for text in block {
            rows.push((y, text));
            y -= LEADING;
        }
    }
    page.mono_lines(BODY, MARGIN, &rows);
    pages.push(page);

    let count = pages.len();
    let pdf_pages = pages
        .into_iter()
        .enumerate()
        .map(|(i, mut page)| {
            footer(&mut page, statement, i + 1, count);
            PdfPage::new(Pt(PAGE_W).into(), Pt(PAGE_H).into(), page.ops)
        })
        .collect();
    let mut warnings = Vec::new();
    let bytes = doc.with_pages(pdf_pages).save(
        &PdfSaveOptions {
            subset_fonts: true,
            ..Default::default()
        },
        &mut warnings,
    );
    if bytes.is_empty() {
        return Err(ApiError::internal("printpdf produced no bytes"));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::statements::Month;

    #[test]
    fn wrapping_keeps_every_character() {
        assert_eq!(wrap("", 5), vec![""]);
        assert_eq!(wrap("rent for april", 8), vec!["rent for", "april"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
        let memo = "a memo of exactly one hundred and forty characters, give or take, with words that wrap onto the next lines cleanly and never lose a single";
        assert_eq!(wrap(memo, 22).join(" ").replace("  ", " "), memo);
        assert!(wrap(memo, 22).iter().all(|l| l.chars().count() <= 22));
    }

    #[test]
    fn amounts_are_exact_with_two_decimals() {
        assert_eq!(amount(Decimal::new(5, 0)), "5.00");
        assert_eq!(signed(Decimal::new(125050, 2)), "+1250.50");
        assert_eq!(signed(Decimal::new(-1, 2)), "-0.01");
        assert_eq!(amount(Decimal::new(-0, 2)), "0.00");
    }

    fn statement(entries: usize) -> Statement {
        let month = Month::parse("2026-03").unwrap();
        let mut balance = Decimal::new(10_000, 2);
        let lines = (0..entries)
            .map(|i| {
                let amount = if i % 3 == 2 {
                    Decimal::new(-(i as i64 % 700 + 1), 2)
                } else {
                    Decimal::new(i as i64 % 900 + 1, 2)
                };
                balance += amount;
                Line {
                    at: month.start() + chrono::Duration::seconds((i as i64 * 2_678_400) / entries.max(1) as i64),
                    kind: if amount > Decimal::ZERO { "transfer_in" } else { "transfer_out" }.into(),
                    counterparty: Some("1000000002".into()),
                    memo: if i % 10 == 0 {
                        "a rather long memo that needs more than one line of the statement to be read in full".into()
                    } else {
                        format!("item {i}")
                    },
                    amount,
                    balance_after: balance,
                }
            })
            .collect();
        Statement {
            bank_name: "FlexiBank".into(),
            account_number: "1000000001".into(),
            kind: "savings".into(),
            currency: "INR".into(),
            status: "active".into(),
            owners: vec!["Alice Fernandes".into(), "Zoë Ångström-Łukasiewicz".into()],
            month,
            period_start: month.start(),
            period_end: month.end(),
            to_date: false,
            generated_at: Utc.with_ymd_and_hms(2026, 4, 2, 9, 30, 0).unwrap(),
            opening: Decimal::new(10_000, 2),
            lines,
        }
    }

    /// Renders where the fonts are installed (the Makefile installs them); says so where they are not.
    fn render_or_skip(statement: &Statement) -> Option<Vec<u8>> {
        if !font_dir().join(MONO).exists() {
            eprintln!("skipped: no {MONO} in {} (fonts-dejavu-core)", font_dir().display());
            return None;
        }
        Some(render(statement).expect("renders"))
    }

    #[test]
    fn renders_a_pdf_of_many_pages_and_an_empty_one() {
        let Some(pdf) = render_or_skip(&statement(400)) else { return };
        assert!(pdf.starts_with(b"%PDF-"));
        if let Some(dir) = std::env::var_os("FLEXIBANK_STATEMENT_SAMPLE_DIR") {
            std::fs::write(std::path::Path::new(&dir).join("statement-sample.pdf"), &pdf).unwrap();
        }
        let Some(empty) = render_or_skip(&statement(0)) else { return };
        assert!(empty.starts_with(b"%PDF-"));
    }

    /// The bound's worst case: `cargo test -p flexibank-server --release --lib -- --ignored bound_renders`.
    #[test]
    #[ignore]
    fn bound_renders_in_time() {
        let started = std::time::Instant::now();
        let Some(pdf) = render_or_skip(&statement(crate::statements::MAX_ENTRIES)) else {
            return;
        };
        eprintln!("{} entries: {} bytes in {:?}", crate::statements::MAX_ENTRIES, pdf.len(), started.elapsed());
    }
}

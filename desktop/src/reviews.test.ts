import { describe, expect, it } from 'vitest';
import {
  ADMIN_STATUS_WORDS, FILTERS, KIND_WORDS, STATUS_WORDS, ageText, cancelErrorText, cancelQuestion, cancelledText, decidedText, decideErrorText,
  decisionQuestion, expiryText, heldText, isHeldReview, isOrderKeyRun, isPending, kindNoun, kindWords, maskNumber, outcomeText, reasonWords, reviewId,
  reviewKindNoun, reviewKindWords, reviewTarget, roughDuration,
} from './reviews';
import { fromAccountLabel } from './views/admin-reviews';
import { notificationCategory, notificationText } from './notify-text';
import type { Review } from './types';

const problem = (status: number, code: string, detail = '') => ({ kind: 'problem', status, code, detail, retry_after_s: null });
const NOW = Date.parse('2026-06-01T12:00:00Z');
const iso = (offsetS: number) => new Date(NOW + offsetS * 1000).toISOString();

function review(over: Partial<Review> = {}): Review {
  return {
    id: 'r1', kind: 'transfer', status: 'held_for_review', from_account_id: '0192aaaa-0000-7000-8000-000000000001',
    from_account_number: '100000000009', to_account_number: '100000000027', to_key: null, standing_order_id: null, interbank_payment_id: null,
    amount: '150.00', currency: 'INR', memo: '', reason: '150.00 INR to a payee added less than 24 h ago (more than 100 INR)',
    created_at: iso(-300), expires_at: iso(24 * 3600 - 300), decided_at: null, transfer_id: null, ...over,
  };
}

describe('a held transfer in plain words', () => {
  it('masks the payee as the notices do', () => {
    expect(maskNumber('100000000027')).toBe('••••0027');
    expect(maskNumber(' 12345 ')).toBe('••••2345');
  });
  it('words the two rules of the server, and passes other reasons through', () => {
    expect(reasonWords('150.00 INR to a payee added less than 24 h ago (more than 100 INR)'))
      .toBe('more than 100.00 INR to a payee saved less than 24 hours ago');
    expect(reasonWords('60000.50 INR to a payee added less than 24 h ago (more than 50000 INR)'))
      .toBe('more than 50,000.00 INR to a payee saved less than 24 hours ago');
    expect(reasonWords('250.00 USD after 10 transfers in 10 minutes (at most 10 before a review)'))
      .toBe('a large transfer after 10 transfers in 10 minutes');
    expect(reasonWords('  a new rule of the bank ')).toBe('a new rule of the bank');
    expect(reasonWords('')).toBe('an unusual movement');
  });
  it("says Move money's held message: nothing sent, when it is, and where to cancel", () => {
    expect(heldText(review())).toBe(
      'Held for a check by the bank: 150.00 INR to ••••0027 will be sent once approved '
      + '(reason: more than 100.00 INR to a payee saved less than 24 hours ago). You can cancel it in Reviews.');
  });
  it("takes the 202's review_id, else the list's id", () => {
    expect(reviewId({ id: 'a', review_id: 'a' })).toBe('a');
    expect(reviewId({ id: 'b' })).toBe('b');
  });
});

/** An inter-bank payment by key, held (the 202 of POST /v1/interbank/payments). */
const byKey = (over: Partial<Review> = {}) => review({
  kind: 'interbank', to_account_number: null, to_key: { type: 'phone', value: '+919800000001' }, review_id: 'r1', ...over,
});
/** A standing order's run, held. */
const orderRun = (over: Partial<Review> = {}) => review({ kind: 'standing_order', standing_order_id: 'o1', ...over });

describe('every kind of held movement', () => {
  it('labels the kinds the lists show, a plain transfer when the server names none', () => {
    expect(kindWords('standing_order')).toBe('Standing order run');
    expect(kindWords('interbank')).toBe('Inter-bank (by key)');
    expect(kindWords('transfer')).toBe('Transfer');
    expect(kindWords(undefined)).toBe('Transfer');
    expect(kindWords('a_new_kind')).toBe('a_new_kind');
    expect(Object.keys(KIND_WORDS)).toEqual(['transfer', 'interbank', 'standing_order']);
    expect([kindNoun('transfer'), kindNoun('interbank'), kindNoun('standing_order'), kindNoun(null)])
      .toEqual(['transfer', 'payment to another bank', 'standing order payment', 'transfer']);
  });
  it('labels a held run of a standing order to a key as a standing order run', () => {
    const keyRun = byKey({ standing_order_id: 'o1' });
    expect(isOrderKeyRun(keyRun)).toBe(true);
    expect(reviewKindWords(keyRun)).toBe('Standing order run (inter-bank)');
    expect(reviewKindNoun(keyRun)).toBe('standing order payment to another bank');
    expect([byKey(), orderRun(), review()].map(reviewKindWords)).toEqual(['Inter-bank (by key)', 'Standing order run', 'Transfer']);
    expect([byKey(), orderRun(), review()].map(reviewKindNoun)).toEqual(['payment to another bank', 'standing order payment', 'transfer']);
    expect(isOrderKeyRun(orderRun())).toBe(false);
  });
  it('names the target: the account (masked for the customer, in full for the branch) or the key', () => {
    expect(reviewTarget(review())).toBe('••••0027');
    expect(reviewTarget(review(), true)).toBe('100000000027');
    expect(reviewTarget(orderRun())).toBe('••••0027');
    expect(reviewTarget(byKey())).toBe('Phone key +919800000001');
    expect(reviewTarget(byKey(), true)).toBe('Phone key +919800000001');
    expect(reviewTarget(byKey({ to_key: { type: 'email', value: 'a@b.in' } }))).toBe('E-mail key a@b.in');
    expect(reviewTarget(byKey({ to_key: { type: 'random', value: 'k9' } }))).toBe('Random key k9');
    expect(reviewTarget(byKey({ to_key: null }))).toBe('the payee');
  });
  it('says a payment by key is held, and where to cancel it', () => {
    expect(heldText(byKey())).toBe(
      'Held for a check by the bank: 150.00 INR to phone key +919800000001 will be sent once approved '
      + '(reason: more than 100.00 INR to a payee saved less than 24 hours ago). You can cancel it in Reviews.');
    expect(cancelQuestion(byKey())).toMatch(/^150\.00 INR to phone key \+919800000001 will not be sent/);
    expect(cancelledText(byKey())).toBe('Cancelled: 150.00 INR to phone key +919800000001 will not be sent, and the held amount is free again.');
    expect(cancelledText(review())).toBe('Cancelled: 150.00 INR to ••••0027 will not be sent, and the held amount is free again.');
  });
  it('asks the branch about a payment by key and an order run by what they pay', () => {
    expect(decisionQuestion(byKey(), '100000000009', 'approve')).toMatch(/^150\.00 INR from 100000000009 to phone key \+919800000001 is sent now, once\./);
    expect(decidedText(orderRun({ status: 'approved' }), '100000000009')).toBe('Approved: 150.00 INR from 100000000009 to account 100000000027 was sent.');
  });
  it('tells a held answer from a payment or a transfer', () => {
    expect(isHeldReview(byKey({ status: 'held_for_review' }))).toBe(true);
    expect(isHeldReview({ status: 'pending' })).toBe(false);
    expect(isHeldReview({ status: 'committed' })).toBe(false);
  });
});

describe('ages and expiries', () => {
  it('rounds durations to what matters', () => {
    expect([0, 59, 60, 119, 3599, 3600, 3660, 7500, 86399, 86400, 90000, 2 * 86400].map(roughDuration))
      .toEqual(['less than a minute', 'less than a minute', '1 min', '1 min', '59 min', '1 h', '1 h 1 min', '2 h 5 min', '23 h 59 min',
        '1 day', '1 day 1 h', '2 days']);
    expect(roughDuration(-5)).toBe('less than a minute');
  });
  it('says how long a review waited and when it expires', () => {
    expect(ageText(iso(-10), NOW)).toBe('held just now');
    expect(ageText(iso(-300), NOW)).toBe('held 5 min ago');
    expect(ageText(iso(-7500), NOW)).toBe('held 2 h 5 min ago');
    expect(expiryText(iso(24 * 3600 - 300), NOW)).toBe('in 23 h 55 min');
    expect(expiryText(iso(-1), NOW)).toBe('now');
    expect(ageText('not a date', NOW)).toBe('—');
  });
});

describe("the customer's reviews", () => {
  const when = (s: string) => s.slice(0, 16).replace('T', ' ');
  it('says what became of each', () => {
    expect(outcomeText(review(), when, NOW)).toBe(
      `Not sent yet: waiting for the bank's check. If it is not decided in 23 h 55 min (${when(iso(24 * 3600 - 300))}), it is not sent.`);
    const decided = { decided_at: '2026-06-01T12:30:00Z' };
    expect(outcomeText(review({ ...decided, status: 'approved', transfer_id: 't1' }), when, NOW)).toBe('Approved on 2026-06-01 12:30: 150.00 INR was sent.');
    expect(outcomeText(review({ ...decided, status: 'rejected' }), when, NOW)).toMatch(/^Refused by the bank on 2026-06-01 12:30: nothing was sent/);
    expect(outcomeText(review({ ...decided, status: 'cancelled' }), when, NOW)).toMatch(/^You cancelled it on .*held amount is free again\.$/);
    expect(outcomeText(review({ ...decided, status: 'expired' }), when, NOW)).toMatch(/^Not decided in time on .*nothing was sent/);
  });
  it('asks before cancelling, saying what it does', () => {
    expect(cancelQuestion(review())).toBe('150.00 INR to ••••0027 will not be sent, and the held amount is free again at once. To pay it after all, make a new transfer.');
  });
  it('says why a cancel was refused', () => {
    expect(cancelErrorText(problem(409, 'review_decided', 'this review was approved already'))).toMatch(/^This transfer was decided already: it can no longer be cancelled/);
    expect(cancelErrorText(problem(404, 'not_found'))).toBe('No such held transfer.');
    expect(cancelErrorText({ kind: 'unreachable', status: 0, code: 'unreachable', detail: 'x', retry_after_s: null })).toBe('Cannot reach the server');
  });
  it('has words for every status, and only a held one is pending', () => {
    for (const s of ['held_for_review', 'approved', 'rejected', 'cancelled', 'expired'] as const) {
      expect(STATUS_WORDS[s]).toMatch(/^[A-Z][a-z]+$/);
      expect(ADMIN_STATUS_WORDS[s]).toBeTruthy();
      expect(isPending({ status: s })).toBe(s === 'held_for_review');
    }
  });
});

describe("the branch's review queue", () => {
  it('filters by every status the server knows, pending first', () => {
    expect(FILTERS.map((f) => f.value)).toEqual(['pending', 'approved', 'rejected', 'cancelled', 'expired', 'all']);
  });
  it('names the account paying by the number the review gives, with its owners once known', () => {
    const r = review();
    expect(fromAccountLabel(r, undefined)).toBe('100000000009');
    expect(fromAccountLabel(r, { owners: [{ id: 'u1', full_name: 'Alice Fernandes' }] })).toBe('100000000009 (Alice Fernandes)');
    expect(fromAccountLabel(review({ from_account_number: '100000000036' }), { owners: [{ id: 'u1', full_name: 'A' }, { id: 'u2', full_name: 'B' }] }))
      .toBe('100000000036 (A & B)');
    // A server before from_account_number: the id's start.
    expect(fromAccountLabel({ from_account_id: r.from_account_id }, undefined)).toBe('account 0192aaaa…');
  });
  it('asks before deciding, saying what each decision does', () => {
    expect(decisionQuestion(review(), '100000000009 (Alice Fernandes)', 'approve')).toBe(
      '150.00 INR from 100000000009 (Alice Fernandes) to account 100000000027 is sent now, once. '
      + 'It was held for: more than 100.00 INR to a payee saved less than 24 hours ago.');
    expect(decisionQuestion(review(), '100000000009', 'reject')).toMatch(/is not sent: the held amount is released to the customer, who is told/);
  });
  it('says what a decision did', () => {
    expect(decidedText(review({ status: 'approved' }), '100000000009')).toBe('Approved: 150.00 INR from 100000000009 to account 100000000027 was sent.');
    expect(decidedText(review({ status: 'rejected' }), '100000000009')).toMatch(/^Rejected: .* was not sent; the held amount is free again and the customer is told\.$/);
  });
  it('says a maker-checker refusal in plain words', () => {
    const refusal = (why: string) => problem(403, 'forbidden', `another branch admin must decide this review: ${why}`);
    expect(decideErrorText(refusal('you created this customer'))).toBe('Another branch admin must decide this: you created this customer.');
    expect(decideErrorText(refusal('you opened this account'))).toBe('Another branch admin must decide this: you opened this account.');
    expect(decideErrorText(refusal("you changed this account's limit in the last 24 h")))
      .toBe("Another branch admin must decide this: you changed this account's limit in the last 24 h.");
    expect(decideErrorText(problem(403, 'forbidden', 'branch admins only'))).toMatch(/^You may not decide this review/);
  });
  it('says the other refusals, and that nothing moved', () => {
    expect(decideErrorText(problem(409, 'review_decided', 'this review was cancelled already'))).toMatch(/^This review was decided already .* Nothing more changed\.$/);
    expect(decideErrorText(problem(409, 'account_inactive'))).toMatch(/frozen or closed now.*Nothing was moved; you can reject it\.$/);
    expect(decideErrorText(problem(409, 'insufficient_funds'))).toBe('Insufficient funds. Nothing was moved.');
    expect(decideErrorText(problem(409, 'limit_exceeded', 'account 100000000009: 150.00 INR would pass its daily limit of 100.00 INR (0.00 used today)')))
      .toMatch(/^Over the daily limit: .*Nothing was moved\.$/);
    expect(decideErrorText(problem(404, 'not_found'))).toBe('No such review in your branch.');
  });
});

describe('review notices', () => {
  it('words held, approved and each way a review ends without moving', () => {
    expect(notificationText({ kind: 'review.held', payload: { review_id: 'r1', amount: '150.00', currency: 'INR', to: '••••0027' } }))
      .toBe('Your transfer of 150.00 INR to ••••0027 is held for a check by the bank: it is sent once approved. You can cancel it in Reviews.');
    expect(notificationText({ kind: 'review.approved', payload: { review_id: 'r1', status: 'approved', amount: '150.00', currency: 'INR' } }))
      .toBe('Your held transfer of 150.00 INR was approved and sent.');
    const ended = (status: string) => notificationText({ kind: 'review.rejected', payload: { review_id: 'r1', status, amount: '200.00', currency: 'INR' } });
    expect(ended('rejected')).toBe('Your held transfer of 200.00 INR was refused by the bank: nothing was sent, and the held amount is free again.');
    expect(ended('cancelled')).toBe('You cancelled your held transfer of 200.00 INR: nothing was sent, and the held amount is free again.');
    expect(ended('expired')).toBe('Your held transfer of 200.00 INR was not decided in time: nothing was sent, and the held amount is free again.');
    for (const kind of ['review.held', 'review.approved', 'review.rejected']) expect(notificationCategory(kind)).toBe('Money');
  });
});

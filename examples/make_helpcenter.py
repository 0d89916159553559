"""Write the bundled sample data: the help center of Tallyhoo, a fictional invoicing app.

Everything here is invented for embedops. The articles call each feature by its product name
("Clockwork", "Payrail") while customers ask in plain words ("repeating bills", "getting paid
out"), which is exactly the gap a fine-tune closes: a stock model cannot know that Clockwork
means recurring invoices until it has seen a few questions about it.

It also writes the demo's second act. On 16 November 2026 Tallyhoo launches payroll: five new
features ("Paystub", "Timecard", ...) that the fine-tuned model has never seen. `helpcenter-payroll/`
is the help center after the launch (the original articles and questions plus the payroll ones),
and `traffic/` is what customers typed into the search box: a reference week, a quiet week like
the training data, then the launch week, when half of the questions are about payroll.

Run it to regenerate the files (the output is deterministic):

    python examples/make_helpcenter.py
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

HERE = Path(__file__).parent
OUT = HERE / "helpcenter"
PAYROLL_OUT = HERE / "helpcenter-payroll"
TRAFFIC_OUT = HERE / "traffic"
SEED = 20261126

# name, what the customer calls it, one-line explanation, setup need, failure cause, plan limit
FEATURES: list[dict[str, object]] = [
    dict(
        name="Quickslip",
        plain=["invoices", "bills I send to customers", "invoicing"],
        intro="Quickslip is the invoice builder: every bill you send to a customer starts as a Quickslip.",
        setup="your logo, payment terms and the numbering pattern for new documents",
        trouble="a customer email address that bounced, so the document was saved but never delivered",
        limit="20 documents a month",
    ),
    dict(
        name="Ledgerline",
        plain=["bank feed", "bank transactions", "the connection to my bank account"],
        intro="Ledgerline pulls the movements of your business account in every night so they can be matched.",
        setup="the online banking login of the account you want to follow",
        trouble="an expired consent at the bank, which must be renewed every 90 days",
        limit="one linked account",
    ),
    dict(
        name="Stashbox",
        plain=["receipts", "receipt photos", "scanned expense receipts"],
        intro="Stashbox keeps the photos and PDFs that prove each expense, matched to the spending they belong to.",
        setup="the email forwarding address you want to send paper proofs to",
        trouble="a photo that is too dark or larger than 15 MB, which the reader skips",
        limit="100 stored files",
    ),
    dict(
        name="Payrail",
        plain=["payouts", "transfers to my bank", "getting paid out"],
        intro="Payrail moves the money customers paid by card from your Tallyhoo balance to your own account.",
        setup="the account number that should receive the money and a proof of identity",
        trouble="a hold placed while we verify a change to the receiving account",
        limit="weekly transfers only",
    ),
    dict(
        name="Crew",
        plain=["team members", "staff accounts", "employee logins"],
        intro="Crew is the list of people who can sign in to your business, each with a role.",
        setup="the email address of each person you invite",
        trouble="an invitation link that expired after seven days",
        limit="two seats",
    ),
    dict(
        name="Beacon",
        plain=["payment reminders", "late payment nudges", "overdue reminders"],
        intro="Beacon emails customers whose balance is overdue, on a schedule you choose.",
        setup="how many days after the due date the first message goes out",
        trouble="a customer who unsubscribed from messages, so Beacon stays silent for them",
        limit="three messages per document",
    ),
    dict(
        name="Clockwork",
        plain=["recurring invoices", "repeating bills", "subscriptions I charge every month"],
        intro="Clockwork repeats a bill on a fixed rhythm, such as the first of every month.",
        setup="a template document, the rhythm and the date of the first run",
        trouble="a template whose customer was archived, which stops every later run",
        limit="five active schedules",
    ),
    dict(
        name="Switchyard",
        plain=["integrations", "connected apps", "links to other software like my online shop"],
        intro="Switchyard connects Tallyhoo to the other tools you run, such as a web shop or a CRM.",
        setup="an administrator login for the tool on the other side",
        trouble="a password changed on the other tool, which breaks the connection until you reconnect",
        limit="one connection",
    ),
    dict(
        name="Tally Sheets",
        plain=["reports", "profit and loss statement", "financial summaries"],
        intro="Tally Sheets are the statements built from your books: profit and loss, balance, aged debts.",
        setup="the first month of your financial year",
        trouble="transactions that are still unmatched, which leave the totals incomplete",
        limit="the last twelve months of history",
    ),
    dict(
        name="Shield",
        plain=["two-factor login", "login security codes", "2FA"],
        intro="Shield asks for a six-digit code from your phone each time someone signs in.",
        setup="an authenticator app on a phone you keep with you",
        trouble="a phone clock that drifted, so the six-digit codes arrive already expired",
        limit="no limit on any plan",
    ),
    dict(
        name="Meridian",
        plain=["foreign currencies", "charging in euros", "exchange rates"],
        intro="Meridian lets you bill and record amounts in currencies other than your home one.",
        setup="the extra currencies you trade in",
        trouble="a rate that was not published on a bank holiday, so the previous day's rate is used",
        limit="two extra currencies",
    ),
    dict(
        name="Tax Compass",
        plain=["sales tax", "VAT rates", "tax settings"],
        intro="Tax Compass works out which rate applies to each line and keeps the totals for your return.",
        setup="your registration number and the regions where you must charge it",
        trouble="a line item with no rate chosen, which is left out of the return",
        limit="one region",
    ),
    dict(
        name="Harbor",
        plain=["backups", "a full copy of my books", "data backup"],
        intro="Harbor keeps a nightly snapshot of your whole company file that you can download or restore.",
        setup="where the snapshot should also be copied, such as a cloud drive",
        trouble="a cloud drive that is full, so the copy stops half way",
        limit="seven days of snapshots",
    ),
    dict(
        name="Vault keys",
        plain=["API keys", "developer access tokens", "the API"],
        intro="Vault keys let your own programs read and write Tallyhoo data through the developer interface.",
        setup="a label for the key and the scopes it should be allowed to use",
        trouble="a key that was rotated, so programs still using the old one are refused",
        limit="one key",
    ),
    dict(
        name="Pocketcard",
        plain=["company cards", "employee spending cards", "the corporate card"],
        intro="Pocketcard issues payment cards to your staff with a spending limit for each card.",
        setup="a spending limit and the person who will carry the card",
        trouble="a merchant category that the card's rules block",
        limit="three cards",
    ),
]

# Launched on 16 November 2026, after the first model went to production.
PAYROLL: list[dict[str, object]] = [
    dict(
        name="Paystub",
        plain=["payslips", "salary slips", "pay statements for my staff"],
        intro="Paystub produces the statement each employee receives with every salary payment.",
        setup="each employee's tax code and the address the statement should be sent to",
        trouble="an employee record without a tax code, so the statement cannot be finalised",
        limit="five employees",
    ),
    dict(
        name="Timecard",
        plain=["timesheets", "hours my employees worked", "clocking in and out"],
        intro="Timecard records the hours each person worked so that hourly wages are paid right.",
        setup="the working week and the rounding rule for late arrivals",
        trouble="a shift left open overnight, which blocks the week from being approved",
        limit="one approver",
    ),
    dict(
        name="Nestegg",
        plain=["pension contributions", "retirement savings for staff", "the workplace pension"],
        intro="Nestegg deducts and forwards the retirement savings of each employee to the pension provider.",
        setup="the provider's scheme number and the contribution rates",
        trouble="a provider that rejected the file because an employee's birth date is missing",
        limit="one pension provider",
    ),
    dict(
        name="Sunspot",
        plain=["paid holidays", "vacation days", "annual leave requests"],
        intro="Sunspot tracks the days off each employee is entitled to, asks for, and has taken.",
        setup="the yearly allowance and the month the leave year starts",
        trouble="a request that overlaps a public holiday, which must be approved again",
        limit="one leave policy",
    ),
    dict(
        name="Payday Run",
        plain=["running payroll", "paying my employees", "monthly salaries"],
        intro="Payday Run calculates wages, deductions and taxes and pays everyone on the chosen day.",
        setup="the pay day, the bank account salaries leave from and each employee's salary",
        trouble="a balance too low on the paying account the day before pay day",
        limit="monthly runs only",
    ),
]

# How people really type into a search box: greetings, trailing words, lower case.
OPENERS = ["", "", "", "hi, ", "hello, ", "quick question: ", "help: ", "hey - "]
CLOSERS = ["", "", "", "?", " thanks", " please", " asap", "??"]

# title, body, and the ways customers ask about it ({j} = product name, {p} = plain words)
TOPICS: list[dict[str, object]] = [
    dict(
        title="Setting up {j}",
        body="Open Settings, choose {j} and press Get started. {intro} The wizard asks for {setup}. "
        "Most businesses finish in under five minutes, and nothing is sent to customers until you confirm.",
        asks=[
            "how do I start using {p}?",
            "where do I turn on {p} for my business",
            "first time setting up {p}, what do I need to have ready",
            "steps to get {p} going",
        ],
    ),
    dict(
        title="Turning {j} off",
        body="Switching {j} off keeps everything it already holds but stops any new activity. "
        "Use the toggle at the top of the {j} page; you can switch it back on at any time and "
        "pick up where you left off. {intro}",
        asks=[
            "can I switch off {p} without losing anything",
            "how to disable {p}",
            "pause {p} for a while",
            "I don't want {p} anymore, how do I stop it",
        ],
    ),
    dict(
        title="Who can manage {j}",
        body="By default only Owners and Admins can change {j}. Give someone the '{j} manager' role "
        "from the Crew page to let them do it too; read-only roles can look but not edit. {intro}",
        asks=[
            "can my employee change the {p} settings",
            "which roles are allowed to manage {p}",
            "give my accountant access to {p}",
            "someone on my team can't edit {p}, why",
        ],
    ),
    dict(
        title="{j} is not working",
        body="A red dot next to {j} means the last attempt failed. The most common cause is {trouble}. "
        "Fix that, then press Retry on the {j} page; the dot turns green within a minute. {intro}",
        asks=[
            "{p} stopped working",
            "why is {p} broken today",
            "{p} shows an error, what do I do",
            "something is wrong with my {p}",
        ],
    ),
    dict(
        title="{j} limits on each plan",
        body="The Starter plan includes {limit} for {j}. Growth and Pro raise or remove that limit, "
        "and you can upgrade from Billing without losing data. {intro}",
        asks=[
            "is there a limit on {p}",
            "do I need to upgrade to get more {p}",
            "what do I get for {p} on the cheapest plan",
            "{p} says I reached my limit",
        ],
    ),
    dict(
        title="Exporting data from {j}",
        body="Every record in {j} can be downloaded as a CSV file from the Export menu, filtered by date. "
        "Large exports are emailed to you as a link that stays valid for 48 hours. {intro}",
        asks=[
            "download my {p} data as a spreadsheet",
            "how do I get a copy of everything in {p}",
            "export {p} to excel",
            "can I take my {p} history with me",
        ],
    ),
    dict(
        title="Emails and alerts from {j}",
        body="{j} sends an alert when something needs your attention. Choose which alerts you get, and "
        "whether by email or in the app, under Profile, then Notifications, then {j}. {intro}",
        asks=[
            "too many emails about {p}",
            "turn off notifications for {p}",
            "I never get an alert when {p} needs me",
            "change who is emailed about {p}",
        ],
    ),
    dict(
        title="Deleting items in {j}",
        body="Deleted items in {j} move to the bin for 30 days before they are removed for good; an Owner "
        "can restore them from there. Items already reported to the tax office cannot be deleted. {intro}",
        asks=[
            "remove something from {p} permanently",
            "I deleted something in {p} by mistake, can I get it back",
            "how long until deleted {p} items are gone",
            "why can't I delete an old item in {p}",
        ],
    ),
    dict(
        title="Using {j} on the mobile app",
        body="The phone app shows {j} under the More tab, with the same data as the web. A few settings "
        "can only be changed on the web; the app says so and links there. {intro}",
        asks=[
            "does {p} work on my phone",
            "can I use {p} from the iPhone app",
            "where is {p} in the android app",
            "manage {p} on mobile",
        ],
    ),
    dict(
        title="Change history for {j}",
        body="Every change to {j} is written to the activity log with the person, the time and the old and "
        "new values. Open the clock icon on the {j} page to read it or download it. {intro}",
        asks=[
            "see who changed {p}",
            "log of edits to {p}",
            "find out when {p} was modified and by whom",
            "audit trail for {p}",
        ],
    ),
]


def build(
    rng: random.Random,
    features: list[dict[str, object]],
    first: int = 0,
) -> tuple[list[dict], list[dict], list[tuple[str, str]], list[tuple[str, str]]]:
    corpus: list[dict] = []
    queries: list[dict] = []
    train: list[tuple[str, str]] = []
    test: list[tuple[str, str]] = []
    for f_idx, feature in enumerate(features, start=first):
        for t_idx, topic in enumerate(TOPICS):
            doc_id = f"hc-{f_idx:02d}{t_idx:02d}"
            fill = {"j": feature["name"], **{k: v for k, v in feature.items() if k != "plain"}}
            corpus.append(
                {"_id": doc_id, "title": str(topic["title"]).format(**fill), "text": str(topic["body"]).format(**fill)}
            )
            asks = rng.sample(list(topic["asks"]), 2)  # type: ignore[arg-type]
            for k, ask in enumerate(asks):
                q_id = f"q-{doc_id[3:]}-{k}"
                text = ask.format(p=rng.choice(feature["plain"]))  # type: ignore[arg-type]
                queries.append({"_id": q_id, "text": text[0].upper() + text[1:]})
                (test if k == 1 and rng.random() < 2 / 3 else train).append((q_id, doc_id))
    return corpus, queries, train, test


def write_beir(
    out: Path, corpus: list[dict], queries: list[dict], train: list[tuple[str, str]], test: list[tuple[str, str]]
) -> list[dict]:
    """The golden set in BEIR layout plus the training questions as pairs; returns the pairs."""
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    write_jsonl(out / "corpus.jsonl", corpus)
    write_jsonl(out / "queries.jsonl", queries)
    for split, rows in (("train", train), ("test", test)):
        with open(out / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as fh:
            fh.write("query-id\tcorpus-id\tscore\n")
            fh.writelines(f"{q}\t{d}\t1\n" for q, d in rows)
    docs = {d["_id"]: f"{d['title']} {d['text']}" for d in corpus}
    texts = {q["_id"]: q["text"] for q in queries}
    pairs = [{"anchor": texts[q], "positive": docs[d]} for q, d in train]
    write_jsonl(out / "train_pairs.jsonl", pairs)
    return pairs


def search_box(rng: random.Random, features: list[dict[str, object]]) -> str:
    """One question as a customer types it: a random feature, topic and phrasing."""
    feature = rng.choice(features)
    ask = str(rng.choice(list(rng.choice(TOPICS)["asks"])))  # type: ignore[arg-type]
    text = rng.choice(OPENERS) + ask.format(p=rng.choice(feature["plain"])) + rng.choice(CLOSERS)  # type: ignore[arg-type]
    return text if rng.random() < 0.5 else text[0].upper() + text[1:]


def traffic_day(rng: random.Random, day: dt.date, n: int, payroll_share: float) -> list[dict]:
    rows = []
    for _ in range(n):
        features = PAYROLL if rng.random() < payroll_share else FEATURES
        stamp = dt.datetime.combine(day, dt.time(), dt.UTC) + dt.timedelta(seconds=rng.randrange(86_400))
        rows.append({"text": search_box(rng, features), "ts": stamp.strftime("%Y-%m-%dT%H:%M:%SZ")})
    return sorted(rows, key=lambda r: r["ts"])


def write_tuning_split(train: list[tuple[str, str]], texts: dict[str, str], docs: dict[str, str]) -> None:
    """A dev split for `embedops tune`, carved from the training questions (never from test, which
    the gate judges): every fourth one is held out, and tune_pairs.jsonl trains on the rest."""
    dev = train[::4]
    held = {q for q, _ in dev}
    with open(OUT / "qrels" / "dev.tsv", "w", encoding="utf-8") as fh:
        fh.write("query-id\tcorpus-id\tscore\n")
        fh.writelines(f"{q}\t{d}\t1\n" for q, d in dev)
    write_jsonl(
        OUT / "tune_pairs.jsonl", [{"anchor": texts[q], "positive": docs[d]} for q, d in train if q not in held]
    )
    print(f"tuning: {len(dev)} dev questions, {len(train) - len(dev)} tuning pairs -> {OUT}")


def write_payroll_act() -> None:
    """The help center after the payroll launch, and three weeks of search-box traffic."""
    rng = random.Random(SEED + 1)
    old = build(random.Random(SEED), FEATURES)
    new = build(rng, PAYROLL, first=len(FEATURES))
    pairs = write_beir(PAYROLL_OUT, *(a + b for a, b in zip(old, new, strict=True)))

    (TRAFFIC_OUT / "live").mkdir(parents=True, exist_ok=True)
    launch = dt.date(2026, 11, 16)
    reference = [row for k in range(14, 7, -1) for row in traffic_day(rng, launch - dt.timedelta(days=k), 300, 0.0)]
    write_jsonl(TRAFFIC_OUT / "reference.jsonl", reference)
    for k in range(-7, 7):  # a quiet week before the launch, then the launch week
        day = launch + dt.timedelta(days=k)
        write_jsonl(
            TRAFFIC_OUT / "live" / f"{day.isoformat()}.jsonl", traffic_day(rng, day, 160, 0.5 if k >= 0 else 0.0)
        )
    print(
        f"payroll: {len(pairs)} training pairs -> {PAYROLL_OUT}; traffic: {len(reference)} reference texts, "
        f"14 days of 160 -> {TRAFFIC_OUT}"
    )


def main() -> None:
    rng = random.Random(SEED)
    corpus, queries, train, test = build(rng, FEATURES)
    write_beir(OUT, corpus, queries, train, test)

    # Triplets whose negative is the same kind of article about another feature (the confusable one).
    docs = {d["_id"]: f"{d['title']} {d['text']}" for d in corpus}
    texts = {q["_id"]: q["text"] for q in queries}
    triplets = []
    for q, d in train:
        other = rng.choice([f for f in range(len(FEATURES)) if f != int(d[3:5])])
        triplets.append({"anchor": texts[q], "positive": docs[d], "negative": docs[f"hc-{other:02d}{d[5:]}"]})
    write_jsonl(OUT / "train_triplets.jsonl", triplets)
    print(f"{len(corpus)} articles, {len(queries)} questions ({len(train)} train, {len(test)} test) -> {OUT}")
    write_tuning_split(train, texts, docs)
    write_payroll_act()


def write_jsonl(path: Path, rows: list[dict]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


if __name__ == "__main__":
    main()

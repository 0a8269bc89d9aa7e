"""Search over many messages in many scripts: how long one query takes over HTTP.

    python -m bench.search [--messages 100000] [--repeats 20] [--json FILE] [--markdown FILE]

A data folder gets its users and channels through a real server's HTTP API,
then its messages through the server's own store class (as `bench.dataset`
fills the cold-start folder), in eight languages and six scripts: English,
German and French (Latin, with `ß` and accents), Russian (Cyrillic), Greek,
Arabic, Hindi (Devanagari, with combining marks) and Chinese (CJK, written
without spaces between words, so a run of ideographs up to punctuation is
one word and is found by its beginning). `chatapp reindex` builds the search
index (timed), then a real server answers each query `--repeats` times for
the member of most channels, one query at a time; the times are the
client's, from request to parsed answer, so they include HTTP and JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bench import machine
from chatapp.client import ChatClient
from chatapp.messaging.adapters import LevelDBMessageStore
from chatapp.testing.process import ServerProcess

PASSWORD: Final = "search bench password"
USERS: Final = ("alice", "bob", "carol", "dave")
GROUPS: Final = 12
"""Groups of alice with the others in turn; one more group without alice holds a share of
the messages, so every query also has results it must leave out."""
IN_FLIGHT: Final = 4096
RARE_EVERY: Final = 5_000
"""One message in this many carries the rare word."""


def _words(text: str) -> list[str]:
    return text.split()


# Chat-like words per language; a message takes 6 to 18 of one language's.
WORDS: Final[dict[str, list[str]]] = {
    "en": _words(
        "meeting project deadline budget review tomorrow lunch coffee release server "
        "client design morning please thanks update draft report call office team"
    ),
    "de": _words(
        "Besprechung Projekt Frist Straße morgen Mittagessen Kaffee Bericht Entwurf "
        "bitte danke Büro Mannschaft Größe prüfen fertig"
    ),
    "fr": _words(
        "réunion projet échéance demain déjeuner café rapport brouillon merci équipe "
        "bureau été élève prêt vérifier"
    ),
    "ru": _words(
        "встреча проект срок бюджет завтра обед кофе отчёт черновик спасибо команда "
        "офис сервер готово проверить"
    ),
    "el": _words(
        "συνάντηση έργο προθεσμία αύριο μεσημεριανό καφές αναφορά ευχαριστώ ομάδα γραφείο έτοιμο"
    ),
    "ar": _words("اجتماع مشروع موعد ميزانية غدا غداء قهوة تقرير شكرا فريق مكتب جاهز"),
    "hi": _words("बैठक परियोजना समय बजट कल दोपहर कॉफ़ी रिपोर्ट धन्यवाद टीम कार्यालय तैयार"),
    "zh": _words("会议 项目 截止日期 预算 明天 午饭 咖啡 报告 草稿 谢谢 团队 办公室"),
}
RARE_WORD: Final = "quetzalcoatl"
# (what, query): each kind of query the issue names, in several scripts.
QUERIES: Final = (
    ("common word", "meeting"),
    ("common word, upper case", "MEETING"),
    ("rare word", RARE_WORD),
    ("prefix", "dead"),
    ("one-letter prefix", "m"),
    ("two words", "budget review"),
    ("phrase", '"project deadline"'),
    ("German, ß as ss", "STRASSE"),
    ("French, accent", "réunion"),
    ("Cyrillic", "встреча"),
    ("Cyrillic prefix", "отч"),
    ("Greek", "συνάντηση"),
    ("Arabic", "اجتماع"),
    ("Devanagari", "बैठक"),
    ("CJK prefix", "会议"),
    ("no match", "xylophonequartz"),
)


@dataclass(frozen=True)
class Layout:
    channels: list[dict[str, Any]]
    """`{"channel_id", "members"}` of every channel the messages go into."""
    alice_channels: int


def text_of(rng: random.Random, number: int) -> str:
    language = list(WORDS)[number % len(WORDS)]
    words = rng.choices(WORDS[language], k=rng.randint(6, 18))
    if number % RARE_EVERY == 0:
        words.insert(rng.randrange(len(words)), RARE_WORD)
    if language == "zh":
        # Chinese is written without spaces; punctuation ends a word here.
        return (
            "\uff0c".join(  # the full-width comma
                "".join(words[i : i + 2]) for i in range(0, len(words), 2)
            )
            + "\u3002"
        )
    return " ".join(words).capitalize() + rng.choice([".", "!", "?", ""])


async def make_accounts(url: str) -> Layout:
    tokens: dict[str, ChatClient] = {}
    ids: dict[str, int] = {}
    for name in USERS:
        client = ChatClient(url)
        await client.__aenter__()
        await client.signup(name, PASSWORD)
        await client.login(name, PASSWORD)
        tokens[name], ids[name] = client, client.user_id
    try:
        channels = []
        others = USERS[1:]
        for n in range(GROUPS):
            members = [ids["alice"], ids[others[n % len(others)]]]
            group = await tokens["alice"].create_group(f"group {n}", members[1:])
            channels.append({"channel_id": group.channel_id, "members": members})
        outside = await tokens["bob"].create_group("without alice", [ids["carol"]])
        channels.append({"channel_id": outside.channel_id, "members": [ids["bob"], ids["carol"]]})
        return Layout(channels, alice_channels=GROUPS)
    finally:
        for client in tokens.values():
            await client.__aexit__(None, None, None)


async def fill(folder: Path, layout: Layout, count: int, seed: int) -> float:
    store = await LevelDBMessageStore.open(folder)
    rng = random.Random(seed)
    started = time.perf_counter()
    created_at = int(time.time() * 1000) - count
    try:
        for first in range(0, count, IN_FLIGHT):
            await asyncio.gather(
                *(
                    _append(store, layout, number, text_of(rng, number), created_at + number)
                    for number in range(first, min(count, first + IN_FLIGHT))
                )
            )
    finally:
        await store.close()
    return time.perf_counter() - started


async def _append(
    store: LevelDBMessageStore, layout: Layout, number: int, text: str, created_at: int
) -> None:
    channel = layout.channels[number % len(layout.channels)]
    members: list[int] = channel["members"]
    await store.append(
        sender_id=members[number % len(members)],
        channel_id=channel["channel_id"],
        client_msg_id=f"search-{number}",
        text=text,
        member_ids=members,
        created_at=created_at,
    )


async def run_queries(url: str, repeats: int) -> list[dict[str, Any]]:
    results = []
    async with ChatClient(url) as client:
        await client.login("alice", PASSWORD)
        await client.search("warm up")
        for what, query in QUERIES:
            times = []
            found = 0
            more = False
            for _ in range(repeats):
                started = time.perf_counter()
                answer = await client.search(query)
                times.append((time.perf_counter() - started) * 1000)
                found, more = len(answer.results), answer.has_more
            times.sort()
            results.append(
                {
                    "what": what,
                    "query": query,
                    "first_page": found,
                    "has_more": more,
                    "p50_ms": round(statistics.median(times), 2),
                    "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
                    "max_ms": round(times[-1], 2),
                }
            )
    return results


def measure(messages: int, repeats: int, work: Path) -> dict[str, Any]:
    data_dir = work / "data"
    with ServerProcess(data_dir) as server:
        layout = asyncio.run(make_accounts(server.url))
        assert server.stop() == 0
    fill_seconds = asyncio.run(fill(data_dir / "messages", layout, messages, seed=13))
    reindex = [sys.executable, "-m", "chatapp", "reindex", "--data-dir", str(data_dir)]
    started = time.perf_counter()
    subprocess.run(reindex, check=True, capture_output=True)
    reindex_seconds = time.perf_counter() - started
    index_bytes = sum(p.stat().st_size for p in data_dir.glob("search.sqlite3*"))
    messages_bytes = sum(p.stat().st_size for p in (data_dir / "messages").iterdir())
    with ServerProcess(data_dir) as server:
        load = os.getloadavg()[0]
        queries = asyncio.run(run_queries(server.url, repeats))
    return {
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": machine.describe(Path(__file__).resolve().parent.parent),
        "load_average": round(load, 2),
        "messages": messages,
        "channels": len(layout.channels),
        "searched_channels": layout.alice_channels,
        "fill_seconds": round(fill_seconds, 2),
        "reindex_seconds": round(reindex_seconds, 2),
        "index_mib": round(index_bytes / 2**20, 1),
        "messages_mib": round(messages_bytes / 2**20, 1),
        "repeats": repeats,
        "queries": queries,
    }


def markdown(result: dict[str, Any]) -> str:
    facts = result["machine"]
    lines = [
        "# Search benchmark",
        "",
        f"Measured {result['measured_at']} on commit `{facts['commit']}` with "
        f"`python -m bench.search --messages {result['messages']} --repeats "
        f"{result['repeats']}`: {facts['cores']} cores ({facts['cpu_model']}), Python "
        f"{facts['python']}, load average {result['load_average']} when the queries began "
        "(the machine is shared; read the figures as an upper bound).",
        "",
        f"{result['messages']:,} messages in {result['channels']} channels, eight languages; "
        f"the searcher is in {result['searched_channels']} of them. `chatapp reindex` took "
        f"{result['reindex_seconds']} s ({result['messages'] / result['reindex_seconds']:,.0f} "
        f"messages/s); index {result['index_mib']} MiB beside a message store of "
        f"{result['messages_mib']} MiB. Each query {result['repeats']} times, one at a time, "
        "timed by the client (HTTP and JSON included).",
        "",
        "| query | q | first page | more | p50 ms | p99 ms | max ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for q in result["queries"]:
        query = q["query"].replace("|", "\\|")
        lines.append(
            f"| {q['what']} | `{query}` | {q['first_page']} | {'yes' if q['has_more'] else 'no'}"
            f" | {q['p50_ms']} | {q['p99_ms']} | {q['max_ms']} |"
        )
    lines += [
        "",
        "Chinese is written without spaces, so a run of ideographs up to punctuation is one"
        " word: `会议` finds the runs that begin with it, not a 会议 in the middle of one. With"
        " 20 repeats, p99 is the slowest of them.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-search-"))
    try:
        result = measure(args.messages, args.repeats, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = markdown(result)
    print(text)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False))
    if args.markdown:
        args.markdown.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

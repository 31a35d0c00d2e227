"""The serving benchmark's results in words and a table, for the READMEs (`benchmarks/readme_tables.py`).

`summary(document)`: one paragraph (the top-level README); `goals_table(document)`: the goals against what was
measured (serving/README.md). Both from a `benchmarks/results/serving.json` document.
"""

from __future__ import annotations

from typing import Any


def _rows(document: dict[str, Any]) -> dict[tuple[str, int, int], dict[str, Any]]:
    return {(r["server"], r["batch"], r["concurrency"]): r for r in document["servers"]}


def _best_rest_b32(document: dict[str, Any]) -> dict[str, Any]:
    rest = [r for r in document["servers"] if r["server"] == "embedded rest" and r["batch"] == 32]
    return max(rest, key=lambda r: r["examples_per_s"])


def _rounds(ratios: dict[str, Any], name: str) -> str:
    """ "by round 3.71x, 3.7x, 3.45x: **3.7x**": the ratio within each round, then their median."""
    shown = ", ".join(f"{value}x" for value in ratios["by_round"][name])
    return f"by round {shown}: **{ratios[name]}x**"


def _measured_where(document: dict[str, Any]) -> str:
    git, machine = document["git"], document["machine"]
    dirty = " with changes not committed" if git["dirty"] else ""
    return (
        f"commit {git['commit'][:7]}{dirty}, {document['date']}, {machine['cores']}-core {machine['cpu']}, "
        f"load average {document['load_average_before'][0]} before and {document['load_average_after'][0]} after"
    )


def summary(document: dict[str, Any]) -> str:
    """A paragraph: the ratios to the naive peer, REST batch 32 against before, and the soak."""
    rows, ratios, soak = _rows(document), document["ratios"], document["soak"]
    rest, naive = rows["embedded rest", 1, 8], rows["naive rest", 1, 8]
    best = _best_rest_b32(document)
    errors = soak["socket_errors"] + soak["http_errors"]
    return (
        f"Measured side by side in one run against a naive FastAPI server on the same SavedModel "
        f"(`make bench-serving`; {_measured_where(document)}): REST at batch 1 and concurrency 8 answers "
        f"{ratios['rest_b1_c8_vs_naive_requests_per_s']}x the naive server's requests per second (p99 "
        f"{rest['p99_ms']:.0f} ms against {naive['p99_ms']:,.0f} ms), gRPC "
        f"{ratios['grpc_b1_c8_vs_naive_rest_requests_per_s']}x with `--grpc-processes {document['grpc_processes']}` "
        f"({ratios['grpc_1_process_b1_c8_vs_naive_rest_requests_per_s']}x with one); REST at batch 32 reaches "
        f"{best['examples_per_s']:,.0f} examples/s ({ratios['rest_b32_vs_before']}x the server before its "
        f"profile-driven rewrite; goal 10x); {soak['requests']:,} requests at concurrency 32 gave {errors} errors "
        f"and {soak['rss_growth_percent']:+}% resident memory.\n"
    )


def goals_table(document: dict[str, Any]) -> str:
    """Where and when it was measured, then a table of each goal, what was measured and whether it was met."""
    rows, ratios, soak, goals = _rows(document), document["ratios"], document["soak"], document["goals"]
    rest, naive, grpc, single = (
        rows[name, 1, 8] for name in ("embedded rest", "naive rest", "embedded grpc", "embedded grpc, 1 process")
    )
    best = _best_rest_b32(document)
    peer = rows["naive rest", 32, best["concurrency"]]
    grpc_b32 = [r["examples_per_s"] for r in document["servers"] if r["server"] == "embedded grpc" and r["batch"] == 32]

    def met(*names: str) -> str:
        return "met" if all(goals[n] for n in names) else "**not met**"

    lines = [
        f"Last run: {_measured_where(document)}; the `{document['model']['name']}` model, "
        f"{document['seconds_per_setting']:g} s per setting, the median of {document['rounds_per_setting']} rounds "
        "with the servers in turn.",
        "",
        "| goal | measured | |",
        "|---|---|---|",
        f"| REST, batch 1, c=8: at least 2x the naive peer's requests/s | {rest['requests_per_s']:,.1f} vs "
        f"{naive['requests_per_s']:,.1f} req/s; {_rounds(ratios, 'rest_b1_c8_vs_naive_requests_per_s')} | "
        f"{met('rest_b1_c8_at_least_2x_naive')} |",
        f"| REST, batch 1, c=8: p99 below the peer's | {rest['p99_ms']:,.1f} ms vs {naive['p99_ms']:,.1f} ms | "
        f"{met('rest_b1_c8_p99_below_naive')} |",
        f"| gRPC, batch 1, c=8: at least 3x the peer's REST requests/s | {grpc['requests_per_s']:,.1f} vs "
        f"{naive['requests_per_s']:,.1f} req/s; {_rounds(ratios, 'grpc_b1_c8_vs_naive_rest_requests_per_s')} "
        f"(`--grpc-processes {document['grpc_processes']}`; one process: {single['requests_per_s']:,.1f} req/s, "
        f"{_rounds(ratios, 'grpc_1_process_b1_c8_vs_naive_rest_requests_per_s')}) | "
        f"{met('grpc_b1_c8_at_least_3x_naive_rest')} |",
        f"| REST, batch 32: at least 10x the {ratios['rest_b32_examples_per_s_before']:,.1f} examples/s of before | "
        f"{best['examples_per_s']:,.1f} examples/s (c={best['concurrency']}): **{ratios['rest_b32_vs_before']}x**; "
        f"the peer: {peer['examples_per_s']:,.1f} | {met('rest_b32_at_least_10x_before')} |",
        f"| soak: 10,000 requests at c=32, no errors, RSS growth under 10% | {soak['requests']:,} answered, "
        f"{soak['socket_errors'] + soak['http_errors']} errors, p99 {soak['p99_ms']:,.1f} ms, RSS "
        f"{soak['rss_mib_after_warm_up']:,.1f} -> {soak['rss_mib_after']:,.1f} MiB ({soak['rss_growth_percent']:+}%) | "
        f"{met('soak_no_errors', 'soak_answered_every_request', 'soak_rss_growth_under_10_percent')} |",
        "",
        f"gRPC at batch 32 answers {min(grpc_b32):,.1f} to {max(grpc_b32):,.1f} examples/s.",
    ]
    return "\n".join(lines) + "\n"

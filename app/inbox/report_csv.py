"""Reports as CSV files a spreadsheet opens cleanly: UTF-8 with a BOM, ISO dates, one header row."""

from __future__ import annotations

import csv
import io


def _sheet(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()


def overview_csv(report: dict) -> str:
    """One row per local day of the period."""
    header = ["date", "new", "closed", "reopened", "inbound", "outbound", "first_response_median_s"]
    return _sheet(header, [[d[k] for k in header] for d in report["by_day"]])


def agents_csv(rows: list[dict]) -> str:
    """One row per agent."""
    header = [
        "agent_id",
        "agent",
        "assigned",
        "closed",
        "replies",
        "first_response_median_s",
        "first_response_p90_s",
        "resolution_median_s",
        "resolution_p90_s",
    ]
    return _sheet(
        header,
        [
            [
                r["user"]["id"],
                r["user"]["name"],
                r["assigned"],
                r["closed"],
                r["replies"],
                r["first_response_s"]["median"],
                r["first_response_s"]["p90"],
                r["resolution_s"]["median"],
                r["resolution_s"]["p90"],
            ]
            for r in rows
        ],
    )


def badges_csv(rows: list[dict]) -> str:
    """One row per inbox whose platform judges response times."""
    header = [
        "inbox_id",
        "inbox",
        "channel",
        "kind",
        "customers",
        "answered",
        "response_rate",
        "median_response_s",
        "within_rate",
        "very_responsive",
        "estimated_response_s",
    ]
    return _sheet(
        header,
        [
            [
                r["inbox"]["id"],
                r["inbox"]["name"],
                r["inbox"]["channel"],
                r["kind"],
                r["customers"],
                r["answered"],
                r.get("response_rate"),
                r.get("median_response_s"),
                r.get("within_rate"),
                {True: "yes", False: "no"}.get(r.get("very_responsive"), ""),
                r.get("estimated_response_s"),
            ]
            for r in rows
        ],
    )

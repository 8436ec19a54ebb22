"""What `mayorista summary` (and the demo) prints: a short view of each published table."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from pipelines import warehouse

# percentages cut to 2 decimals, as every document shows them (pipelines/reports/fmt.py); the inner
# round(…, 6) keeps a float such as 9989.999999997 from losing a hundredth
_FLOOR_PCT = "CAST(floor(round({x} * 100, 6)) / 100 AS DECIMAL(7, 2))"

_VIEWS = {
    "NCC-11 energy by distributor and band (latest quarter)": """
        SELECT quarter, distributor, band, round(spot_energy_mwh, 1) AS spot_mwh, round(ccs_usd)::BIGINT AS ccs_usd,
               round(peste_usd_mwh, 2) AS peste, round(ccc_usd)::BIGINT AS ccc_usd, round(pmce_usd_mwh, 2) AS pmce
        FROM ncc11_energy WHERE quarter = (SELECT max(quarter) FROM ncc11_energy)
        ORDER BY distributor, CASE band WHEN 'punta' THEN 1 WHEN 'intermedia' THEN 2 ELSE 3 END""",
    "NCC-11 power by distributor (latest quarter)": """
        SELECT quarter, distributor, round(ccp_usd)::BIGINT AS ccp_usd, round(demax_kw_sum)::BIGINT AS demax_kw_sum, round(scp_usd)::BIGINT AS scp_usd
        FROM ncc11_power WHERE quarter = (SELECT max(quarter) FROM ncc11_power) ORDER BY distributor""",
    "Ex-post: projected against metered energy by distributor and month (all bands)": """
        SELECT quarter, month, distributor, round(sum(projected_mwh), 1) AS projected_mwh,
               round(sum(metered_mwh), 1) AS metered_mwh, round(sum(deviation_mwh), 1) AS deviation_mwh,
               round(100 * sum(deviation_mwh) / sum(projected_mwh), 2) AS deviation_pct,
               round(sum(deviation_usd))::BIGINT AS deviation_usd, max(points) AS points,
               round(max(completeness_pct), 2) AS completeness_pct
        FROM ncc11_expost GROUP BY ALL ORDER BY quarter, distributor, month""",
    "Metering completeness by month and channel": """
        SELECT month, channel, count(*) AS points, {floor_avg} AS avg_pct, {floor_min} AS min_pct,
               count(*) FILTER (WHERE completeness_pct < 100) AS incomplete_points
        FROM meter_completeness GROUP BY ALL ORDER BY ALL""".format(
        floor_avg=_FLOOR_PCT.format(x="avg(completeness_pct)"), floor_min=_FLOOR_PCT.format(x="min(completeness_pct)")
    ),
    "VEE findings by rule": """
        SELECT rule, count(*) AS findings, count(DISTINCT point_id) AS points FROM vee_findings GROUP BY ALL ORDER BY 2 DESC""",
    # `verdict`: the change's verdict over every rule, the word its letter uses (reports/verdicts.py);
    # delivery_compliance.compliant alone is only the 2-day delivery of 14.10
    "VPN changes: verdict (every rule) and Direct@mm delivery": """
        SELECT v.month, v.change_id, v.participant, c.deadline, c.required_points, c.on_time_points,
               c.late_points, c.missing_points, {verdict} AS verdict
        FROM ({changes}) AS v LEFT JOIN delivery_compliance AS c ON c.month = v.month AND c.change_id = v.change_id
        ORDER BY v.month, v.change_id""",
}


def _delivery_view(sql: str, existing: set[str]) -> str:
    """The delivery view with each change's verdict in the documents' default language."""
    from pipelines.reports import verdicts
    from pipelines.reports.i18n import words

    t = words()
    word = "CASE v.verdict " + " ".join(f"WHEN '{k}' THEN '{t('verdict.' + k)}'" for k in verdicts.VERDICTS) + " END"
    changes = verdicts.change_sql("vpn_changes" in existing).format(r="vpn_change_review", c="vpn_changes")
    return sql.format(verdict=word, changes=changes)


def render(path: str | Path | None = None) -> str:
    con = warehouse.connect(path, read_only=True)
    try:
        existing = warehouse.tables(con)
        parts = [f"warehouse: {warehouse.describe(path)}"]
        with pl.Config(
            tbl_rows=40,
            tbl_cols=12,
            tbl_hide_dataframe_shape=True,
            tbl_hide_column_data_types=True,
            thousands_separator=",",
            float_precision=2,
            tbl_width_chars=200,
            fmt_str_lengths=60,
        ):
            for title, sql in _VIEWS.items():
                if "{changes}" in sql:  # every reviewed change, with its verdict and its 14.10 delivery
                    if "vpn_change_review" not in existing:
                        continue
                    sql, table = _delivery_view(sql, existing), "vpn_change_review"
                else:
                    table = sql.split(" FROM ")[1].split()[0]
                if table in existing:
                    parts.append(f"\n== {title} ==\n{con.sql(sql).pl()}")
        return "\n".join(parts)
    finally:
        con.close()

-- Ex-post: the NCC-11 projection of each month against the metered energy (contract ncc11.md, "Ex-post").
-- Reads the warehouse tables ncc11_energy_month, ncc11_energy, metering_points, meter_hourly and
-- meter_completeness; view hour_bands(hour, band): every hour of the quarter in the band in force on its
-- date (pipelines.bands, the versioned calendar: the 2026-05-01 change applies). Parameters $quarter and
-- $months: the quarter's months whose metering has been ingested (the others give no rows).
--   consumption points of d in m: points whose registry row active in m (the latest, as the ingest takes
--                      it) has participant = d and kind = 'consumption'
--   metered_mwh[d,b,m] = sum over those points' hours h of m in band b of (kwh_del[h] - kwh_rec[h]) / 1000
--                        (every hourly value: complete, partial and estimated)
--   estimated_mwh      = the same sum over the values of quality 'estimated' (pipelines.metering.aggregates)
--   deviation_mwh      = metered - projected;   deviation_pct = 100 * deviation / projected (NULL if 0)
--   deviation_usd      = PMCE[d,b] (11.5, the quarter's) * deviation_mwh
--   completeness_pct   = 100 * received / expected intervals of the points' kwh_del and kwh_rec channels
-- A distributor with no consumption point in m: points 0, metered and what derives from it NULL.
-- The energy sums are exact (DECIMAL(38, 12), see ncc11_energy.sql): the same bits on every run.
WITH projection AS (
    SELECT month, distributor, band, total_demand_mwh AS projected_mwh
    FROM ncc11_energy_month
    WHERE quarter = $quarter AND list_contains($months::VARCHAR[], month)
),

price AS (
    SELECT distributor, band, pmce_usd_mwh FROM ncc11_energy WHERE quarter = $quarter
),

span AS (
    SELECT
        month,
        strptime(month || '-01', '%Y-%m-%d')::DATE AS first_day,
        (strptime(month || '-01', '%Y-%m-%d') + INTERVAL 1 MONTH - INTERVAL 1 DAY)::DATE AS last_day
    FROM (SELECT unnest($months::VARCHAR[]) AS month)
),

registry AS (
    -- a point's participant and kind in a month: its latest registry row active in the month
    SELECT
        s.month, p.point_id,
        arg_max(p.participant, p.valid_from) AS participant,
        arg_max(p.kind, p.valid_from) AS kind
    FROM metering_points p
    JOIN span s ON p.valid_from <= s.last_day AND (p.valid_to IS NULL OR p.valid_to >= s.first_day)
    GROUP BY ALL
),

points AS (
    SELECT month, point_id, participant AS distributor
    FROM registry
    WHERE kind = 'consumption' AND participant IN (SELECT distributor FROM projection)
),

hourly AS (
    SELECT
        p.month, p.distributor, b.band, h.quality,
        (CASE h.channel WHEN 'kwh_del' THEN h.value ELSE -h.value END / 1000)::DECIMAL(38, 12) AS mwh
    FROM meter_hourly h
    JOIN points p ON p.point_id = h.point_id AND p.month = h.month::VARCHAR
    JOIN hour_bands b ON b.hour = h.hour
    WHERE h.channel IN ('kwh_del', 'kwh_rec') AND list_contains($months::VARCHAR[], h.month::VARCHAR)
),

metered AS (
    SELECT
        month, distributor, band,
        sum(mwh)::DOUBLE AS metered_mwh,
        coalesce(sum(mwh) FILTER (WHERE quality = 'estimated'), 0)::DOUBLE AS estimated_mwh
    FROM hourly
    GROUP BY ALL
),

coverage AS (
    SELECT
        p.month, p.distributor,
        count(DISTINCT p.point_id) AS points,
        100.0 * sum(c.received_intervals)::DOUBLE / nullif(sum(c.expected_intervals), 0)::DOUBLE AS completeness_pct
    FROM points p
    LEFT JOIN meter_completeness c
        ON c.point_id = p.point_id AND c.month = p.month AND c.channel IN ('kwh_del', 'kwh_rec')
    GROUP BY ALL
),

joined AS (
    SELECT
        j.month, j.distributor, j.band, j.projected_mwh, pr.pmce_usd_mwh,
        coalesce(cv.points, 0) AS points,
        CASE WHEN cv.points > 0 THEN coalesce(m.metered_mwh, 0) END AS metered_mwh,
        CASE WHEN cv.points > 0 THEN coalesce(m.estimated_mwh, 0) END AS estimated_mwh,
        CASE WHEN cv.points > 0 THEN cv.completeness_pct END AS completeness_pct
    FROM projection j
    LEFT JOIN price pr USING (distributor, band)
    LEFT JOIN coverage cv USING (month, distributor)
    LEFT JOIN metered m USING (month, distributor, band)
)

SELECT
    $quarter AS quarter, month, distributor, band,
    projected_mwh,
    metered_mwh,
    metered_mwh - projected_mwh AS deviation_mwh,
    CASE WHEN abs(projected_mwh) >= 1e-9 THEN 100 * (metered_mwh - projected_mwh) / projected_mwh END AS deviation_pct,
    pmce_usd_mwh,
    pmce_usd_mwh * (metered_mwh - projected_mwh) AS deviation_usd,
    points::INTEGER AS points,
    completeness_pct,
    CASE WHEN abs(metered_mwh) >= 1e-9 THEN 100 * estimated_mwh / metered_mwh END AS estimated_pct
FROM joined
ORDER BY distributor, month, CASE band WHEN 'punta' THEN 1 WHEN 'intermedia' THEN 2 ELSE 3 END

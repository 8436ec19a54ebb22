-- NCC-11 energy per distributor, band and quarter.
--   11.3  CCS[d,b,m]   = sum_{i,j in b} PN[m,i,j] * DE[d,m,i,j]        PESTE = CCS / sum DE
--   11.4  CCC[d,b,m]   = sum_{g,i in b} DEMCON[m,d,g,i] * PRECIOC[m,g,i]
--   11.5  PMCE[d,b,m]  = (CCC + CCS) / DTOTE
-- Inputs (views): nodal_prices(node, slot, price_usd_mwh), spot_demand(distributor, node, slot,
-- energy_mwh), contract_dispatch(distributor, contract_id, slot, energy_mwh, price_usd_mwh),
-- total_demand(distributor, slot, energy_mwh), slots(slot, band, weight).
-- A slot is an hour (weight 1) or a load block standing for `weight` hours: a block's hourly energy
-- and price apply to each of its hours. Spot demand keeps its sign (negative = over-contracted).
-- A zero denominator gives NULL, never inf/NaN/0 (|x| < 1e-9 MWh counts as zero: each hour's term is
-- rounded to 1e-12 below, so offsetting hours may not sum to exactly 0).
-- Every sum is exact: each term (a double) is rounded to DECIMAL(38, 12) and the terms are added as
-- 128-bit integers, whose sum does not depend on the order of addition. A DOUBLE sum does: DuckDB adds
-- in parallel, in an order that varies between runs and with the number of threads, which moved the
-- last bits of published figures (PMCE 80.47783881748173 vs ...168 on the same inputs). A regulator's
-- figure must be the same bits on every run. The sums go back to DOUBLE (the published type). Cost,
-- this query on the full-scale quarter (1.39 M rows, 2 quiet cores, median of 9): DOUBLE 0.15 s,
-- DECIMAL 0.18-0.22 s, `sum(x ORDER BY key)` (also deterministic) 0.34 s. Terms of |x| >= 1e26
-- cannot be cast: formulas._run reports that as bad input.
WITH spot AS (
    SELECT
        s.distributor, t.band,
        sum((s.energy_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS spot_energy_mwh,
        sum((p.price_usd_mwh * s.energy_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS ccs_usd
    FROM spot_demand s
    JOIN slots t ON t.slot = s.slot
    JOIN nodal_prices p ON p.node = s.node AND p.slot = s.slot
    GROUP BY ALL
),

contract AS (
    SELECT
        c.distributor, t.band,
        sum((c.energy_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS contract_energy_mwh,
        sum((c.energy_mwh * c.price_usd_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS ccc_usd
    FROM contract_dispatch c
    JOIN slots t ON t.slot = c.slot
    GROUP BY ALL
),

total AS (
    SELECT d.distributor, t.band, sum((d.energy_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS total_demand_mwh
    FROM total_demand d
    JOIN slots t ON t.slot = d.slot
    GROUP BY ALL
),

keys AS (
    SELECT distributor, band
    FROM (
        SELECT distributor FROM total
        UNION
        SELECT distributor FROM spot
        UNION
        SELECT distributor FROM contract
    )
    CROSS JOIN (VALUES ('punta'), ('intermedia'), ('valle')) AS b (band)
),

joined AS (
    SELECT
        k.distributor, k.band,
        coalesce(s.spot_energy_mwh, 0) AS spot_energy_mwh,
        coalesce(s.ccs_usd, 0) AS ccs_usd,
        coalesce(c.contract_energy_mwh, 0) AS contract_energy_mwh,
        coalesce(c.ccc_usd, 0) AS ccc_usd,
        coalesce(d.total_demand_mwh, 0) AS total_demand_mwh
    FROM keys k
    LEFT JOIN spot s USING (distributor, band)
    LEFT JOIN contract c USING (distributor, band)
    LEFT JOIN total d USING (distributor, band)
)

SELECT
    $quarter AS quarter, distributor, band,
    spot_energy_mwh, ccs_usd,
    CASE WHEN abs(spot_energy_mwh) >= 1e-9 THEN ccs_usd / spot_energy_mwh END AS peste_usd_mwh,
    contract_energy_mwh, ccc_usd, total_demand_mwh,
    CASE WHEN abs(total_demand_mwh) >= 1e-9 THEN (ccc_usd + ccs_usd) / total_demand_mwh END AS pmce_usd_mwh
FROM joined
ORDER BY distributor, CASE band WHEN 'punta' THEN 1 WHEN 'intermedia' THEN 2 ELSE 3 END

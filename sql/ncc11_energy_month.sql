-- The NCC-11 projection per month m of the quarter, distributor and band: the same sums as
-- ncc11_energy.sql (11.3 CCS, 11.4 CCC, DTOTE), over the hours of month m only. The ex-post
-- (ncc11_expost.sql) compares it with the metered energy of each month.
--   spot_energy_mwh[d,b,m]     = sum_{j in m, b} DE[d,j]
--   ccs_usd[d,b,m]             = sum_{i, j in m, b} PN[i,j] * DE[d,i,j]
--   contract_energy_mwh[d,b,m] = sum_{g, j in m, b} DEMCON[d,g,j]
--   ccc_usd[d,b,m]             = sum_{g, j in m, b} DEMCON[d,g,j] * PRECIOC[g,j]
--   total_demand_mwh[d,b,m]    = sum_{j in m, b} DTOTE[d,j]
-- Inputs (views): nodal_prices(node, slot, price_usd_mwh), spot_demand(distributor, node, slot,
-- energy_mwh), contract_dispatch(distributor, slot, energy_mwh, price_usd_mwh), total_demand(distributor,
-- slot, energy_mwh), slots(slot, band, weight) with `slot` an hour, distributors(distributor) (every
-- distributor of the quarter's programming files); parameters $quarter, $months (the
-- quarter's three `YYYY-MM` labels) and $by_hour: false for programming by load blocks, whose blocks
-- carry no month: every value is then NULL (unknown), never guessed.
-- One row per (month, distributor, band) for every distributor of the quarter (0 where it has no hours).
-- Sums are exact (DECIMAL(38, 12), see ncc11_energy.sql): the same bits on every run and thread count.
WITH spot AS (
    SELECT
        strftime(s.slot, '%Y-%m') AS month, s.distributor, t.band,
        sum((s.energy_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS spot_energy_mwh,
        sum((p.price_usd_mwh * s.energy_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS ccs_usd
    FROM spot_demand s
    JOIN slots t ON t.slot = s.slot
    JOIN nodal_prices p ON p.node = s.node AND p.slot = s.slot
    GROUP BY ALL
),

contract AS (
    SELECT
        strftime(c.slot, '%Y-%m') AS month, c.distributor, t.band,
        sum((c.energy_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS contract_energy_mwh,
        sum((c.energy_mwh * c.price_usd_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS ccc_usd
    FROM contract_dispatch c
    JOIN slots t ON t.slot = c.slot
    GROUP BY ALL
),

total AS (
    SELECT
        strftime(d.slot, '%Y-%m') AS month, d.distributor, t.band,
        sum((d.energy_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS total_demand_mwh
    FROM total_demand d
    JOIN slots t ON t.slot = d.slot
    GROUP BY ALL
),

keys AS (
    SELECT m.month, d.distributor, b.band
    FROM (SELECT unnest($months::VARCHAR[]) AS month) AS m
    CROSS JOIN (SELECT DISTINCT distributor FROM distributors) AS d
    CROSS JOIN (VALUES ('punta'), ('intermedia'), ('valle')) AS b (band)
)

SELECT
    $quarter AS quarter, k.month, k.distributor, k.band,
    CASE WHEN $by_hour THEN coalesce(d.total_demand_mwh, 0) END AS total_demand_mwh,
    CASE WHEN $by_hour THEN coalesce(s.spot_energy_mwh, 0) END AS spot_energy_mwh,
    CASE WHEN $by_hour THEN coalesce(c.contract_energy_mwh, 0) END AS contract_energy_mwh,
    CASE WHEN $by_hour THEN coalesce(s.ccs_usd, 0) END AS ccs_usd,
    CASE WHEN $by_hour THEN coalesce(c.ccc_usd, 0) END AS ccc_usd
FROM keys k
LEFT JOIN spot s USING (month, distributor, band)
LEFT JOIN contract c USING (month, distributor, band)
LEFT JOIN total d USING (month, distributor, band)
ORDER BY k.distributor, k.month, CASE k.band WHEN 'punta' THEN 1 WHEN 'intermedia' THEN 2 ELSE 3 END

-- NCC-11 11.1: what each distributor passes to tariffs, per month m of the quarter
--   total[d,m] = CCC[d,m] + CCS[d,m] + CCP[d,m] + other[d,m]
--   CCC[d,m], CCS[d,m]: the sums of 11.4 and 11.3 over the hours of month m (every band)
--   CCP[d,m]:            11.6, from ncc11_power_month
--   other[d,m]:          the other 11.1 components given in `other_costs` (import contracts, ancillary
--                        services, forced generation, losses, tolls, CURTR, AMM fee, MER regulation,
--                        system operation), summed
-- Inputs (views): nodal_prices(node, slot, price_usd_mwh), spot_demand(distributor, node, slot,
-- energy_mwh), contract_dispatch(distributor, slot, energy_mwh, price_usd_mwh) with `slot` an hour,
-- slots(slot, band, weight) (the quarter's hours), power_month(distributor, month, ccp_usd),
-- other_costs(distributor, month, component, usd); parameter $by_hour: false for programming by load
-- blocks, whose blocks carry no month: CCC, CCS and the total are then NULL (unknown), never guessed.
-- Sums are exact (DECIMAL(38, 12), see ncc11_energy.sql): the same bits on every run and thread count.
WITH spot AS (
    SELECT
        s.distributor, strftime(s.slot, '%Y-%m') AS month,
        sum((p.price_usd_mwh * s.energy_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS ccs_usd
    FROM spot_demand s
    JOIN slots t ON t.slot = s.slot
    JOIN nodal_prices p ON p.node = s.node AND p.slot = s.slot
    GROUP BY ALL
),

contract AS (
    SELECT
        c.distributor, strftime(c.slot, '%Y-%m') AS month,
        sum((c.energy_mwh * c.price_usd_mwh * t.weight)::DECIMAL(38, 12))::DOUBLE AS ccc_usd
    FROM contract_dispatch c
    JOIN slots t ON t.slot = c.slot
    GROUP BY ALL
),

other AS (
    SELECT distributor, month, sum(usd::DECIMAL(38, 12))::DOUBLE AS other_usd FROM other_costs GROUP BY ALL
),

keys AS (
    SELECT distributor, month FROM power_month
    UNION
    SELECT distributor, month FROM spot
    UNION
    SELECT distributor, month FROM contract
    UNION
    SELECT distributor, month FROM other
),

joined AS (
    SELECT
        k.month, k.distributor,
        CASE WHEN $by_hour THEN coalesce(c.ccc_usd, 0) END AS ccc_usd,
        CASE WHEN $by_hour THEN coalesce(s.ccs_usd, 0) END AS ccs_usd,
        coalesce(p.ccp_usd, 0) AS ccp_usd,
        coalesce(o.other_usd, 0) AS other_usd
    FROM keys k
    LEFT JOIN spot s USING (distributor, month)
    LEFT JOIN contract c USING (distributor, month)
    LEFT JOIN power_month p USING (distributor, month)
    LEFT JOIN other o USING (distributor, month)
)

SELECT
    $quarter AS quarter, month, distributor, ccc_usd, ccs_usd, ccp_usd, other_usd,
    ccc_usd + ccs_usd + ccp_usd + other_usd AS total_usd
FROM joined
ORDER BY distributor, month

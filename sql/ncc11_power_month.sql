-- NCC-11 11.6, per month: CCP[d,m] = sum_g PRECIOPOT[g] * POTCON[p,g,m] + DFNC[d,m] * PREFPOT
-- Inputs (views): power_contracts(distributor, contract_id, month, power_kw, price_usd_kw_month),
-- firm_demand(distributor, month, dfnc_kw, demax_kw); parameter $prefpot (USD/kW-month).
-- Sums are exact (DECIMAL(38, 12), see ncc11_energy.sql): the same bits on every run and thread count.
WITH contracts AS (
    SELECT
        distributor, month,
        sum(power_kw::DECIMAL(38, 12))::DOUBLE AS contract_power_kw,
        sum((power_kw * price_usd_kw_month)::DECIMAL(38, 12))::DOUBLE AS contract_cost_usd
    FROM power_contracts
    GROUP BY ALL
)

SELECT
    $quarter AS quarter, f.month, f.distributor,
    coalesce(c.contract_cost_usd, 0) + f.dfnc_kw * $prefpot AS ccp_usd,
    coalesce(c.contract_power_kw, 0) AS contract_power_kw,
    coalesce(c.contract_cost_usd, 0) AS contract_cost_usd,
    f.dfnc_kw, f.demax_kw,
    $prefpot AS prefpot_usd_kw_month
FROM firm_demand f
LEFT JOIN contracts c USING (distributor, month)
ORDER BY f.distributor, f.month

-- NCC-11 per quarter t (months m1, m2, m3):
--   11.6  CCP[d,t] = CCP[d,m1] + CCP[d,m2] + CCP[d,m3]
--   11.7  SCP[d,t] = CCP[d,t] - PREFPOT * (DEMAX[d,m1] + DEMAX[d,m2] + DEMAX[d,m3])
-- Input (view): power_month, the rows of ncc11_power_month for the quarter; parameter $prefpot.
-- Sums are exact (DECIMAL(38, 12), see ncc11_energy.sql): the published figures are the same bits
-- on every run of the same inputs, whatever the number of threads.
WITH quarter AS (
    SELECT
        distributor,
        sum(ccp_usd::DECIMAL(38, 12))::DOUBLE AS ccp_usd,
        sum(demax_kw::DECIMAL(38, 12))::DOUBLE AS demax_kw_sum
    FROM power_month
    GROUP BY distributor
)

SELECT
    $quarter AS quarter, distributor, ccp_usd, demax_kw_sum,
    ccp_usd - $prefpot * demax_kw_sum AS scp_usd,
    $prefpot AS prefpot_usd_kw_month
FROM quarter
ORDER BY distributor

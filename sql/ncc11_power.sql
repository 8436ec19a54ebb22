-- NCC-11 per quarter t (months m1, m2, m3):
--   11.6  CCP[d,t] = CCP[d,m1] + CCP[d,m2] + CCP[d,m3]
--   11.7  SCP[d,t] = CCP[d,t] - PREFPOT * (DEMAX[d,m1] + DEMAX[d,m2] + DEMAX[d,m3])
-- Input (view): power_month, the rows of ncc11_power_month for the quarter; parameter $prefpot.
SELECT
    $quarter AS quarter, distributor,
    sum(ccp_usd) AS ccp_usd,
    sum(demax_kw) AS demax_kw_sum,
    sum(ccp_usd) - $prefpot * sum(demax_kw) AS scp_usd,
    $prefpot AS prefpot_usd_kw_month
FROM power_month
GROUP BY distributor
ORDER BY distributor

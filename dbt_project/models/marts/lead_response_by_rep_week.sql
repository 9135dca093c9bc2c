with

lead_responses as (
    select * from {{ ref('lead_response_times') }}
    where created_at is not null
)

select
    owner_id,
    {{ week_start('cast(created_at as date)') }} as week_start,
    count(*) as leads,
    count(case when is_responded then 1 end) as responded,
    {{ percentile('business_response_minutes', 0.5) }} as median_business_response_minutes,
    {{ percentile('business_response_minutes', 0.9) }} as p90_business_response_minutes,
    avg(case when within_sla then 1.0 else 0.0 end) as sla_rate
from lead_responses
group by 1, 2

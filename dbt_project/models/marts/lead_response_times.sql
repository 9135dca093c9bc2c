with

leads as (
    select lead_id, owner_id, lead_source, created_at from {{ ref('stg_crm__leads') }}
),

reps as (
    select rep_id, time_zone from {{ ref('stg_crm__users') }}
),

candidates as (
    select * from {{ ref('int_lead_response_candidates') }}
),

first_responses as (
    select lead_id, responded_at, response_channel
    from (
        select
            *,
            row_number() over (
                partition by lead_id
                order by responded_at,
                    case response_channel when 'call' then 1 when 'email' then 2 else 3 end
            ) as response_rank
        from candidates
    ) as ranked
    where response_rank = 1
),

responses as (
    select
        leads.lead_id,
        leads.owner_id,
        coalesce(leads.lead_source, 'Unknown') as lead_source,
        leads.created_at,
        first_responses.responded_at as first_response_at,
        first_responses.response_channel,
        coalesce(reps.time_zone, 'UTC') as owner_time_zone
    from leads
    left join first_responses on leads.lead_id = first_responses.lead_id
    left join reps on leads.owner_id = reps.rep_id
),

timed as (
    select
        *,
        ({{ epoch_seconds('first_response_at') }} - {{ epoch_seconds('created_at') }}) / 60.0
            as response_minutes,
        (
            {{ business_seconds_since_epoch(to_local_time('first_response_at', 'owner_time_zone')) }}
            - {{ business_seconds_since_epoch(to_local_time('created_at', 'owner_time_zone')) }}
        ) / 60.0 as business_response_minutes
    from responses
)

select
    lead_id,
    owner_id,
    lead_source,
    created_at,
    first_response_at,
    response_channel,
    response_minutes,
    business_response_minutes,
    owner_time_zone,
    first_response_at is not null as is_responded,
    coalesce(business_response_minutes <= {{ var('lead_response_sla_minutes', 60) }}, false) as within_sla
from timed

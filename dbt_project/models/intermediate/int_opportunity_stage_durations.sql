{#- Days each opportunity spent in each stage it left: from the history row entering the stage to
    the next history row with another stage, summed over repeated stays. -#}
with

history as (
    select opportunity_id, stage_name, created_at, opportunity_history_id
    from {{ ref('stg_crm__opportunity_history') }}
    where created_at is not null and stage_name is not null
),

ordered as (
    select
        *,
        lag(stage_name) over (partition by opportunity_id order by created_at, opportunity_history_id)
            as previous_stage
    from history
),

stage_entries as (
    select * from ordered
    where previous_stage is null or previous_stage <> stage_name
),

stays as (
    select
        opportunity_id,
        stage_name,
        created_at as entered_at,
        lead(created_at) over (partition by opportunity_id order by created_at, opportunity_history_id)
            as left_at
    from stage_entries
)

select
    opportunity_id,
    stage_name,
    sum(({{ epoch_seconds('left_at') }} - {{ epoch_seconds('entered_at') }}) / 86400.0) as days_in_stage
from stays
where left_at is not null
group by 1, 2

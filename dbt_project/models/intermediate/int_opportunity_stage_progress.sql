{#- Per opportunity: the furthest stage of the sales process it reached (lost stages excluded),
    from its history and its current stage. -#}
with

stages as (
    select * from {{ ref('stg_crm__opportunity_stages') }}
),

opportunities as (
    select opportunity_id, stage_name, created_at from {{ ref('stg_crm__opportunities') }}
),

history as (
    select opportunity_id, stage_name from {{ ref('stg_crm__opportunity_history') }}
),

stage_sightings as (
    select opportunity_id, stage_name from opportunities
    union all
    select history.opportunity_id, history.stage_name
    from history
    inner join opportunities on history.opportunity_id = opportunities.opportunity_id
)

select
    opportunities.opportunity_id,
    opportunities.created_at,
    max(stages.stage_order) as furthest_stage_order
from opportunities
inner join stage_sightings on opportunities.opportunity_id = stage_sightings.opportunity_id
inner join stages
    on stage_sightings.stage_name = stages.stage_name
    and not (stages.is_closed and not stages.is_won)
group by 1, 2

{#- Per opportunity: the furthest stage of the sales process it reached (lost stages excluded),
    from its history and its current stage. Every opportunity has a row, whatever its stages:
    a won one (IsWon) reached at least the first won stage; one whose history and current stage
    show no stage of the process (stages in neither OpportunityStage nor the seed) reached the
    first stage. -#}
with

stages as (
    select * from {{ ref('stg_crm__opportunity_stages') }}
),

opportunities as (
    select opportunity_id, stage_name, is_won, created_at from {{ ref('stg_crm__opportunities') }}
),

history as (
    select opportunity_id, stage_name from {{ ref('stg_crm__opportunity_history') }}
),

progress_stages as (
    select stage_name, stage_order, is_won
    from stages
    where not (is_closed and not is_won)
),

process as (
    select
        min(stage_order) as first_stage_order,
        coalesce(min(case when is_won then stage_order end), max(stage_order)) as won_stage_order
    from progress_stages
),

stage_sightings as (
    select opportunity_id, stage_name from opportunities
    union all
    select history.opportunity_id, history.stage_name
    from history
    inner join opportunities on history.opportunity_id = opportunities.opportunity_id
),

known_progress as (
    select
        stage_sightings.opportunity_id,
        max(progress_stages.stage_order) as furthest_stage_order
    from stage_sightings
    inner join progress_stages on stage_sightings.stage_name = progress_stages.stage_name
    group by 1
)

select
    opportunities.opportunity_id,
    opportunities.created_at,
    case
        when opportunities.is_won
            then greatest(
                coalesce(known_progress.furthest_stage_order, process.won_stage_order),
                process.won_stage_order
            )
        else coalesce(known_progress.furthest_stage_order, process.first_stage_order)
    end as furthest_stage_order
from opportunities
cross join process
left join known_progress on opportunities.opportunity_id = known_progress.opportunity_id

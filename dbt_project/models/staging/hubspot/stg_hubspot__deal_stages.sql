{{ config(enabled=crm_family() == 'hubspot') }}

{#- The pipelines' stages in order, in the shape of the seed opportunity_stages. A stage label used
    in several pipelines keeps its first place. Forecast category by the stage's probability:
    see the macro stage_forecast_category. -#}
with

source as (
    select * from {{ source('hubspot', 'deal_stages') }}
),

typed as (
    select
        {{ clean_text('id') }} as stage_id,
        {{ clean_text('label') }} as stage_name,
        {{ parse_integer('pipeline_displayorder') }} as pipeline_order,
        {{ parse_integer('displayorder') }} as display_order,
        coalesce({{ parse_bool('isclosed') }}, false) as is_closed,
        {{ parse_number('probability') }} * 100 as default_probability,
        coalesce({{ parse_bool('archived') }}, false) as is_archived
    from source
),

first_use as (
    select
        *,
        row_number() over (
            partition by stage_name order by pipeline_order, display_order, stage_id
        ) as label_rank
    from typed
    where stage_name is not null and not is_archived
),

stages as (
    select
        stage_name,
        row_number() over (order by pipeline_order, display_order, stage_id) as stage_order,
        is_closed,
        is_closed and default_probability >= 100 as is_won,
        default_probability
    from first_use
    where label_rank = 1
)

select
    stage_name,
    cast(stage_order as integer) as stage_order,
    is_closed,
    is_won,
    cast(default_probability as {{ type_double() }}) as default_probability,
    {{ stage_forecast_category('is_won', 'is_closed', 'default_probability') }} as forecast_category
from stages

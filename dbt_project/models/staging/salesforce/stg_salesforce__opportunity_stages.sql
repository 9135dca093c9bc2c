{{ config(enabled=crm_family() == 'salesforce') }}

{#- The sales process in the shape of the seed opportunity_stages, from the org itself: its
    OpportunityStage rows when the replica has any, else the seed (the fallback for replicas
    without the object; the loader leaves raw.salesforce_opportunitystage empty then).

    stage_name is the picklist's API name (Opportunity.StageName holds it), else its label.
    stage_order renumbers SortOrder 1..n, ties broken by name, so it stays unique even when the
    org repeats a sort order (a warning test on sort_order reports that). A name held by several
    Ids keeps its first one by SortOrder. Forecast category: ForecastCategoryName in its label
    spelling, else from the flags and probability (macro stage_forecast_category). -#}
with

source as (
    select * from {{ source('salesforce', 'opportunitystage') }}
),

seed_stages as (
    select * from {{ ref('opportunity_stages') }}
),

typed as (
    select
        {{ clean_text('id') }} as stage_id,
        coalesce({{ clean_text('apiname') }}, {{ clean_text('masterlabel') }}) as stage_name,
        {{ parse_number('sortorder') }} as sort_order,
        coalesce({{ parse_bool('isclosed') }}, false) or coalesce({{ parse_bool('iswon') }}, false) as is_closed,
        coalesce({{ parse_bool('iswon') }}, false) as is_won,
        {{ parse_number('defaultprobability') }} as default_probability,
        {{ clean_text('forecastcategoryname') }} as forecast_category,
        {{ parse_timestamp('systemmodstamp') }} as system_modstamp,
        _loaded_at
    from source
),

latest as (
    {{ latest_per_key('typed', 'stage_id', 'system_modstamp desc nulls last, _loaded_at desc') }}
),

named as (
    select
        *,
        row_number() over (partition by stage_name order by sort_order nulls last, stage_id) as name_rank
    from latest
    where version_rank = 1 and stage_name is not null
),

org_stages as (
    select
        stage_name,
        row_number() over (order by sort_order nulls last, stage_name) as stage_order,
        is_closed,
        is_won,
        default_probability,
        case forecast_category
            when 'BestCase' then 'Best Case'
            when 'Forecast' then 'Commit'
            else forecast_category
        end as forecast_category,
        sort_order
    from named
    where name_rank = 1
),

chosen as (
    select
        stage_name,
        stage_order,
        is_closed,
        is_won,
        default_probability,
        coalesce(
            forecast_category,
            {{ stage_forecast_category('is_won', 'is_closed', 'default_probability') }}
        ) as forecast_category,
        sort_order,
        'OpportunityStage' as stage_source
    from org_stages

    union all

    select
        stage_name,
        stage_order,
        is_closed,
        is_won,
        default_probability,
        forecast_category,
        stage_order as sort_order,
        'seed' as stage_source
    from seed_stages
    where not exists (select 1 from org_stages)
)

select
    cast(stage_name as {{ dbt.type_string() }}) as stage_name,
    cast(stage_order as integer) as stage_order,
    is_closed,
    is_won,
    cast(default_probability as {{ type_double() }}) as default_probability,
    cast(forecast_category as {{ dbt.type_string() }}) as forecast_category,
    cast(sort_order as {{ type_double() }}) as sort_order,
    cast(stage_source as {{ dbt.type_string() }}) as stage_source
from chosen

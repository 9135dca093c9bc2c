{#-
  Which CRM the canonical staging models (models/staging/crm) read: 'salesforce' (the SQL replica
  and the Salesforce REST API land the same raw tables) or 'hubspot'. Set by SALESOPS_CRM_SOURCE.
-#}
{% macro crm_family() -%}
    {{ return('hubspot' if env_var('SALESOPS_CRM_SOURCE', 'sql') == 'hubspot' else 'salesforce') }}
{%- endmacro %}

{#- The source-specific model behind a canonical CRM entity (stg_crm__<entity>). -#}
{% macro crm_staging_model(entity) -%}
    {%- set hubspot_models = {
        'users': 'stg_hubspot__owners',
        'user_roles': 'stg_hubspot__teams',
        'accounts': 'stg_hubspot__companies',
        'contacts': 'stg_hubspot__contacts',
        'leads': 'stg_hubspot__leads',
        'opportunities': 'stg_hubspot__deals',
        'opportunity_history': 'stg_hubspot__deal_history',
        'opportunity_stages': 'stg_hubspot__deal_stages',
        'tasks': 'stg_hubspot__engagements',
        'campaigns': 'stg_hubspot__campaigns',
        'forecasting_quotas': 'stg_hubspot__quotas',
    } -%}
    {#- Salesforce's stages: the org's OpportunityStage, else the seed (stg_salesforce__opportunity_stages). -#}
    {%- if crm_family() == 'hubspot' -%}
        {{ return(hubspot_models[entity]) }}
    {%- else -%}
        {{ return('stg_salesforce__' ~ entity) }}
    {%- endif -%}
{%- endmacro %}

{#- The canonical model of one CRM entity: the listed columns of its source-specific model. -#}
{% macro canonical_crm_model(entity, columns) -%}
select {{ columns | join(', ') }}
from {{ ref(crm_staging_model(entity)) }}
{%- endmacro %}

{#- HubSpot's forecast category codes in Salesforce's spelling. -#}
{% macro hubspot_forecast_category(column) -%}
    case upper(trim({{ column }}))
        when 'OMIT' then 'Omitted'
        when 'PIPELINE' then 'Pipeline'
        when 'BEST_CASE' then 'Best Case'
        when 'COMMIT' then 'Commit'
        when 'CLOSED' then 'Closed'
    end
{%- endmacro %}

{#- A stage's forecast category from its flags and probability (0-100), where HubSpot has no
    manual one: won Closed, lost Omitted, 90% and over Commit, 75% and over Best Case. -#}
{% macro stage_forecast_category(is_won, is_closed, probability) -%}
    case
        when {{ is_won }} then 'Closed'
        when {{ is_closed }} then 'Omitted'
        when {{ probability }} >= 90 then 'Commit'
        when {{ probability }} >= 75 then 'Best Case'
        else 'Pipeline'
    end
{%- endmacro %}

{#- Test (warning) on a sales process in the shape of the seed opportunity_stages: it has at least one
    closed-won stage. Without one no opportunity can be won by its stage: stage_conversion has no
    end stage and the forecast learns no win by stage. Passes on an empty process. -#}
{% test has_a_closed_won_stage(model) %}
select 'no stage is closed and won' as problem
where exists (select 1 from {{ model }})
    and not exists (select 1 from {{ model }} where is_closed and is_won)
{% endtest %}

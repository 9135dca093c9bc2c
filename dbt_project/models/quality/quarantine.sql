{#- Records kept out of staging because they break a row-level rule (macros/quarantine_rules.sql).
    One row per table x record x rule; first_seen survives from run to run, and a record fixed
    in the CRM leaves on the next run. -#}
{%- set tables = quarantine_tables() -%}
{%- set previous = load_relation(this) -%}
with

{% for table in tables %}
{{ table.name }}_keyed as (
    select * from {{ table.relation }}
    where {{ clean_text('id') }} is not null
),

{{ table.name }}_latest as (
    select *
    from (
        {{ latest_per_key(table.name ~ '_keyed', 'id', parse_timestamp(table.modified) ~ ' desc nulls last, _loaded_at desc') }}
    ) as versions
    {%- if table.deleted %}
    where not coalesce({{ parse_bool(table.deleted) }}, false)
    {%- endif %}
),

{#- The few records breaking any rule, found in one scan; each rule then reads only those. -#}
{{ table.name }}_breaking as materialized (
    select *
    from {{ table.name }}_latest
    where {% for rule in table.rules %}({{ rule.condition }}){% if not loop.last %} or {% endif %}{% endfor %}
),

{{ table.name }}_failures as (
    {% for rule in table.rules %}
    select
        '{{ table.name }}' as source_table,
        id as record_id,
        {{ table.owner }} as owner_id,
        '{{ rule.rule }}' as rule,
        {{ json_of_columns(rule.columns) }} as offending_values,
        _batch_id as batch_id
    from {{ table.name }}_breaking
    where {{ rule.condition }}
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
),
{% endfor %}

current_failures as (
    {% for table in tables %}
    select * from {{ table.name }}_failures
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    current_failures.source_table,
    current_failures.record_id,
    current_failures.owner_id,
    current_failures.rule,
    current_failures.offending_values,
    current_failures.batch_id,
    {% if previous is not none -%}
    coalesce(previous.first_seen, cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp))
    {%- else -%}
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp)
    {%- endif %} as first_seen,
    cast('{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S") }}' as timestamp) as last_seen
from current_failures
{% if previous is not none -%}
left join {{ previous }} as previous
    on current_failures.source_table = previous.source_table
    and current_failures.record_id = previous.record_id
    and current_failures.rule = previous.rule
{%- endif %}

{#- Every raw record is accounted for: raw = staging + quarantined + deleted, per CRM table. -#}
{%- set tables = [
    ('user', 'stg_salesforce__users', false),
    ('userrole', 'stg_salesforce__user_roles', false),
    ('account', 'stg_salesforce__accounts', true),
    ('contact', 'stg_salesforce__contacts', true),
    ('lead', 'stg_salesforce__leads', true),
    ('opportunity', 'stg_salesforce__opportunities', true),
    ('opportunityhistory', 'stg_salesforce__opportunity_history', true),
    ('task', 'stg_salesforce__tasks', true),
    ('campaign', 'stg_salesforce__campaigns', true),
    ('forecastingquota', 'stg_salesforce__forecasting_quotas', false),
] -%}
with

{% for source_table, staging_model, deletable in tables %}
{{ source_table }}_counts as (
    select
        '{{ source_table }}' as source_table,
        (select count(distinct id) from {{ source('salesforce', source_table) }}
            where nullif(trim(id), '') is not null) as raw_records,
        {% if deletable -%}
        (select count(distinct id) from {{ source('salesforce', source_table) }}
            where nullif(trim(id), '') is not null and {{ parse_bool('isdeleted') }}) as deleted_records,
        {%- else -%}
        0 as deleted_records,
        {%- endif %}
        (select count(*) from {{ ref(staging_model) }}) as staging_records,
        (select count(distinct record_id) from {{ ref('quarantine') }}
            where source_table = '{{ source_table }}') as quarantined_records
),
{% endfor %}

counts as (
    {% for source_table, staging_model, deletable in tables %}
    select * from {{ source_table }}_counts
    {% if not loop.last %}union all{% endif %}
    {% endfor %}
)

select
    source_table,
    raw_records,
    staging_records,
    quarantined_records,
    deleted_records,
    raw_records - staging_records - quarantined_records - deleted_records as unaccounted_records,
    raw_records = staging_records + quarantined_records + deleted_records as is_reconciled
from counts

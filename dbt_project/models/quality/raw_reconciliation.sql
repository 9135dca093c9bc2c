{#- Every raw record is accounted for: raw = staging + quarantined + deleted, per CRM table. -#}
{#- Per table: raw relation, staging model, a filter selecting the table's rows in that model,
    and the column flagging deleted (archived) records. -#}
{%- if crm_family() == 'hubspot' -%}
{%- set tables = [
    ('owners', source('hubspot', 'owners'), 'stg_hubspot__owners', none, none),
    ('companies', source('hubspot', 'companies'), 'stg_hubspot__companies', none, 'archived'),
    ('contacts', source('hubspot', 'contacts'), 'stg_hubspot__contacts', none, 'archived'),
    ('deals', source('hubspot', 'deals'), 'stg_hubspot__deals', none, 'archived'),
    ('calls', source('hubspot', 'calls'), 'stg_hubspot__engagements', "task_subtype = 'Call'", 'archived'),
    ('emails', source('hubspot', 'emails'), 'stg_hubspot__engagements', "task_subtype = 'Email'", 'archived'),
    ('meetings', source('hubspot', 'meetings'), 'stg_hubspot__engagements', "task_subtype = 'Meeting'", 'archived'),
    ('tasks', source('hubspot', 'tasks'), 'stg_hubspot__engagements', "task_subtype = 'Task'", 'archived'),
] -%}
{%- else -%}
{%- set tables = [] -%}
{%- for table, model, deleted in [
    ('user', 'stg_salesforce__users', none),
    ('userrole', 'stg_salesforce__user_roles', none),
    ('account', 'stg_salesforce__accounts', 'isdeleted'),
    ('contact', 'stg_salesforce__contacts', 'isdeleted'),
    ('lead', 'stg_salesforce__leads', 'isdeleted'),
    ('opportunity', 'stg_salesforce__opportunities', 'isdeleted'),
    ('opportunityhistory', 'stg_salesforce__opportunity_history', 'isdeleted'),
    ('task', 'stg_salesforce__tasks', 'isdeleted'),
    ('campaign', 'stg_salesforce__campaigns', 'isdeleted'),
    ('forecastingquota', 'stg_salesforce__forecasting_quotas', none),
    ('event', 'stg_salesforce__events', 'isdeleted'),
] -%}
{%- do tables.append((table, source('salesforce', table), model, none, deleted)) -%}
{%- endfor -%}
{%- endif %}
with

{% for source_table, relation, staging_model, staging_filter, deleted in tables %}
{{ source_table }}_counts as (
    select
        '{{ source_table }}' as source_table,
        (select count(distinct id) from {{ relation }}
            where nullif(trim(id), '') is not null) as raw_records,
        {% if deleted -%}
        (select count(distinct id) from {{ relation }}
            where nullif(trim(id), '') is not null and {{ parse_bool(deleted) }}) as deleted_records,
        {%- else -%}
        0 as deleted_records,
        {%- endif %}
        (select count(*) from {{ ref(staging_model) }}
            {%- if staging_filter %} where {{ staging_filter }}{% endif %}) as staging_records,
        (select count(distinct record_id) from {{ ref('quarantine') }}
            where source_table = '{{ source_table }}') as quarantined_records
),
{% endfor %}

counts as (
    {% for source_table, relation, staging_model, staging_filter, deleted in tables %}
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

{#-
  Row-level rules applied between raw and staging. A non-deleted CRM record that breaks one is
  kept out of staging (and so out of every mart) and listed in quality.quarantine with the rule
  and its offending values, until it is fixed in the CRM. Conditions are written over the raw
  text columns. docs/data-quality.md lists them with their severity and owner.
-#}

{% macro invalid_timestamp(column, required=true) -%}
    (
        {%- if required %}{{ clean_text(column) }} is null or {% endif -%}
        ({{ clean_text(column) }} is not null and (
            {{ parse_timestamp(column) }} is null
            or extract(year from {{ parse_timestamp(column) }}) not between 1900 and 2199
        ))
    )
{%- endmacro %}

{% macro invalid_number(column) -%}
    ({{ clean_text(column) }} is not null and {{ parse_number(column) }} is null)
{%- endmacro %}

{% macro negative_number(column) -%}
    ({{ parse_number(column) }} < 0)
{%- endmacro %}

{% macro quarantine_rules() -%}
    {%- set created = {'rule': 'invalid_created_date', 'condition': invalid_timestamp('createddate'), 'columns': ['createddate']} -%}
    {%- set modstamp = {'rule': 'invalid_system_modstamp', 'condition': invalid_timestamp('systemmodstamp'), 'columns': ['systemmodstamp']} -%}
    {%- set rules = {
        'account': [created, modstamp],
        'contact': [created, modstamp],
        'lead': [created, modstamp],
        'opportunity': [
            created, modstamp,
            {'rule': 'amount_not_a_number', 'condition': invalid_number('amount'), 'columns': ['amount']},
            {'rule': 'amount_negative', 'condition': negative_number('amount'), 'columns': ['amount']},
            {'rule': 'probability_out_of_range',
             'condition': '(' ~ invalid_number('probability') ~ ' or ' ~ parse_number('probability') ~ ' not between 0 and 100)',
             'columns': ['probability']},
            {'rule': 'invalid_close_date', 'condition': invalid_timestamp('closedate'), 'columns': ['closedate']},
            {'rule': 'missing_owner', 'condition': clean_text('ownerid') ~ ' is null', 'columns': ['ownerid']},
        ],
        'opportunityhistory': [
            created, modstamp,
            {'rule': 'amount_not_a_number', 'condition': invalid_number('amount'), 'columns': ['amount']},
            {'rule': 'amount_negative', 'condition': negative_number('amount'), 'columns': ['amount']},
        ],
        'task': [created, modstamp],
        'campaign': [
            created, modstamp,
            {'rule': 'actual_cost_not_a_number', 'condition': invalid_number('actualcost'), 'columns': ['actualcost']},
            {'rule': 'actual_cost_negative', 'condition': negative_number('actualcost'), 'columns': ['actualcost']},
            {'rule': 'budgeted_cost_not_a_number', 'condition': invalid_number('budgetedcost'), 'columns': ['budgetedcost']},
            {'rule': 'budgeted_cost_negative', 'condition': negative_number('budgetedcost'), 'columns': ['budgetedcost']},
        ],
        'forecastingquota': [
            modstamp,
            {'rule': 'quota_amount_not_a_number', 'condition': invalid_number('quotaamount'), 'columns': ['quotaamount']},
            {'rule': 'quota_amount_negative', 'condition': negative_number('quotaamount'), 'columns': ['quotaamount']},
            {'rule': 'invalid_start_date', 'condition': invalid_timestamp('startdate'), 'columns': ['startdate']},
        ],
        'event': [
            modstamp,
            {'rule': 'end_before_start',
             'condition': '(' ~ parse_timestamp('enddatetime') ~ ' < ' ~ parse_timestamp('startdatetime') ~ ')',
             'columns': ['startdatetime', 'enddatetime']},
        ],
    } -%}
    {{ return(rules) }}
{%- endmacro %}

{#- HubSpot's rules, over its raw property columns, by HubSpot table. -#}
{% macro hubspot_quarantine_rules() -%}
    {%- set created = {'rule': 'invalid_created_date', 'condition': invalid_timestamp('createdate'), 'columns': ['createdate']} -%}
    {%- set modified = {'rule': 'invalid_last_modified_date', 'condition': invalid_timestamp('hs_lastmodifieddate'), 'columns': ['hs_lastmodifieddate']} -%}
    {%- set engagement_created = {'rule': 'invalid_created_date', 'condition': invalid_timestamp('hs_createdate'), 'columns': ['hs_createdate']} -%}
    {%- set rules = {
        'companies': [created, modified],
        'contacts': [created, {'rule': 'invalid_last_modified_date', 'condition': invalid_timestamp('lastmodifieddate'), 'columns': ['lastmodifieddate']}],
        'deals': [
            created, modified,
            {'rule': 'amount_not_a_number', 'condition': invalid_number('amount'), 'columns': ['amount']},
            {'rule': 'amount_negative', 'condition': negative_number('amount'), 'columns': ['amount']},
            {'rule': 'probability_out_of_range',
             'condition': '(' ~ invalid_number('hs_deal_stage_probability') ~ ' or ' ~ parse_number('hs_deal_stage_probability') ~ ' not between 0 and 1)',
             'columns': ['hs_deal_stage_probability']},
            {'rule': 'invalid_close_date', 'condition': invalid_timestamp('closedate'), 'columns': ['closedate']},
            {'rule': 'missing_owner', 'condition': clean_text('hubspot_owner_id') ~ ' is null', 'columns': ['hubspot_owner_id']},
        ],
        'calls': [engagement_created, modified],
        'emails': [engagement_created, modified],
        'meetings': [engagement_created, modified],
        'tasks': [engagement_created, modified],
    } -%}
    {{ return(rules) }}
{%- endmacro %}

{#- The quarantined tables of the CRM in use: relation, rules, and the columns that hold the
    record's owner, last modification and deletion flag. -#}
{% macro quarantine_tables() -%}
    {%- set tables = [] -%}
    {%- if crm_family() == 'hubspot' -%}
        {%- for table, rules in hubspot_quarantine_rules().items() -%}
            {%- do tables.append({
                'name': table, 'relation': source('hubspot', table), 'rules': rules,
                'owner': clean_text('hubspot_owner_id'),
                'modified': 'lastmodifieddate' if table == 'contacts' else 'hs_lastmodifieddate',
                'deleted': 'archived',
            }) -%}
        {%- endfor -%}
    {%- else -%}
        {%- set owners = {'forecastingquota': clean_text('quotaownerid')} -%}
        {%- set unowned = ('opportunityhistory', 'campaign') -%}
        {%- for table, rules in quarantine_rules().items() -%}
            {%- do tables.append({
                'name': table, 'relation': source('salesforce', table), 'rules': rules,
                'owner': 'cast(null as varchar)' if table in unowned else owners.get(table, clean_text('ownerid')),
                'modified': 'systemmodstamp',
                'deleted': none if table == 'forecastingquota' else 'isdeleted',
            }) -%}
        {%- endfor -%}
    {%- endif -%}
    {{ return(tables) }}
{%- endmacro %}

{#- Text of a JSON object holding the named columns of the current row. -#}
{% macro json_of_columns(columns) -%}
    {{ return(adapter.dispatch('json_of_columns', 'salesops')(columns)) }}
{%- endmacro %}

{% macro default__json_of_columns(columns) -%}
    cast(json_object({% for column in columns %}'{{ column }}', {{ column }}{% if not loop.last %}, {% endif %}{% endfor %}) as varchar)
{%- endmacro %}

{#- Filter for staging models: drop records that sit in quarantine. -#}
{% macro not_quarantined(source_table, id_column) -%}
    {{ id_column }} not in (
        select record_id from {{ ref('quarantine') }} where source_table = '{{ source_table }}'
    )
{%- endmacro %}

{#- Size segment of an account from its headcount (vars segment_*_min_employees). -#}
{% macro size_segment(employees) -%}
    case
        when {{ employees }} is null then 'Unknown'
        when {{ employees }} >= {{ var('segment_enterprise_min_employees', 1000) }} then 'Enterprise'
        when {{ employees }} >= {{ var('segment_mid_market_min_employees', 100) }} then 'Mid-Market'
        else 'SMB'
    end
{%- endmacro %}

{#- A select of the company's email domains: var company_domains, else the domains of CRM users. -#}
{% macro company_domains_select() -%}
    {%- set domains = var('company_domains', []) -%}
    {%- if domains | length > 0 -%}
        {%- for domain in domains %}
    select lower('{{ domain }}') as email_domain{% if not loop.last %} union all{% endif %}
        {%- endfor %}
    {%- else -%}
    select distinct email_domain from {{ ref('stg_crm__users') }} where email_domain is not null
    {%- endif -%}
{%- endmacro %}

{#- Whole days from one date to another. -#}
{% macro days_between(start_date, end_date) -%}
    {{ dbt.datediff(start_date, end_date, 'day') }}
{%- endmacro %}

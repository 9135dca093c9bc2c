{{ config(enabled=crm_family() == 'hubspot') }}

{#- HubSpot's CRM API has no campaign object with costs: an empty relation of the canonical shape. -#}
select
    cast(null as varchar) as campaign_id,
    cast(null as varchar) as campaign_name,
    cast(null as varchar) as campaign_type,
    cast(null as varchar) as status,
    cast(null as date) as start_date,
    cast(null as date) as end_date,
    cast(null as {{ type_double() }}) as budgeted_cost,
    cast(null as {{ type_double() }}) as actual_cost,
    cast(null as timestamp) as created_at,
    cast(null as timestamp) as system_modstamp
where 1 = 0

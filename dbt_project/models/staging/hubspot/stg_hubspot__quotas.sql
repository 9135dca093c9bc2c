{{ config(enabled=crm_family() == 'hubspot') }}

{#- HubSpot's CRM API has no quota object: an empty relation of the canonical shape. -#}
select
    cast(null as varchar) as quota_id,
    cast(null as varchar) as quota_owner_id,
    cast(null as date) as start_date,
    cast(null as {{ type_double() }}) as quota_amount,
    cast(null as timestamp) as system_modstamp
where 1 = 0

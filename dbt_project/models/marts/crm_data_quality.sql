{#- The coordinators' worklist: per owner and check, how many records to fix, which ones, and what
    share of the owner's records of that kind they are. -#}
with

findings as (
    select * from {{ ref('int_crm_hygiene_findings') }}
),

reps as (
    select rep_id, rep_name from {{ ref('stg_crm__users') }}
),

owned_records as (
    select 'opportunity' as source_table, owner_id, count(*) as owner_records
    from {{ ref('stg_crm__opportunities') }} group by 1, 2
    union all
    select 'lead', owner_id, count(*) from {{ ref('stg_crm__leads') }} group by 1, 2
    union all
    select 'contact', owner_id, count(*) from {{ ref('stg_crm__contacts') }} group by 1, 2
    union all
    select 'account', owner_id, count(*) from {{ ref('stg_crm__accounts') }} group by 1, 2
),

worklist as (
    select
        check_name,
        source_table,
        owner_id,
        count(*) as record_count,
        {{ dbt.listagg('record_id', "','", 'order by record_id') }} as record_ids
    from findings
    group by 1, 2, 3
)

select
    worklist.check_name,
    worklist.source_table,
    worklist.owner_id,
    reps.rep_name as owner_name,
    worklist.record_count,
    owned_records.owner_records,
    worklist.record_count * 1.0 / owned_records.owner_records as share_of_owner_records,
    worklist.record_ids,
    {{ as_of_date() }} as as_of
from worklist
left join reps on worklist.owner_id = reps.rep_id
left join owned_records
    on worklist.source_table = owned_records.source_table
    and worklist.owner_id is not distinct from owned_records.owner_id

{% macro latest_per_key(relation, key, order_by) -%}
{#- The rows of `relation` (a CTE or a table) that come first by `order_by` among the rows sharing
    their `key`, with `version_rank` = 1; rows whose key is null are left out.

    The plain form, row_number() over (partition by key ...) on the whole relation, needs memory
    DuckDB cannot spill to disk: on 4.7M tasks it held 2.2 GB, and the quarantine, which does it
    for every CRM table at once, ran out of a 3 GB limit. Raw tables are upserted on their key, so
    nearly every key has one row: only keys with several rows go through the window function. -#}
    select *
    from (
        select
            *,
            row_number() over (partition by {{ key }} order by {{ order_by }}) as version_rank
        from {{ relation }}
        where {{ key }} in (select {{ key }} from {{ relation }} group by {{ key }} having count(*) > 1)
    ) as repeated_keys
    where version_rank = 1
    union all
    select
        *,
        1 as version_rank
    from {{ relation }}
    where {{ key }} in (select {{ key }} from {{ relation }} group by {{ key }} having count(*) = 1)
{%- endmacro %}

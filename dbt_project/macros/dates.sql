{#- Date helpers shared by the marts. -#}

{% macro as_of_date() -%}
    {%- set value = var('as_of', '') -%}
    {%- if value -%} cast('{{ value }}' as date) {%- else -%} current_date {%- endif -%}
{%- endmacro %}

{% macro month_start(column) -%}
    cast({{ dbt.date_trunc('month', column) }} as date)
{%- endmacro %}

{#- Weeks start on Monday (ISO), on DuckDB and PostgreSQL alike. -#}
{% macro week_start(column) -%}
    cast({{ dbt.date_trunc('week', column) }} as date)
{%- endmacro %}

{#- The date `count` units (day, month, ...) after a date; a negative count goes back. -#}
{% macro add_to_date(datepart, count, column) -%}
    cast(({{ dbt.dateadd(datepart, count, column) }}) as date)
{%- endmacro %}

{#- First day of the (fiscal) quarter holding the date; var fiscal_year_start_month shifts quarters. -#}
{% macro quarter_start(column) -%}
    {%- set shift = (var('fiscal_year_start_month', 1) | int) - 1 -%}
    {%- if shift == 0 -%}
    cast({{ dbt.date_trunc('quarter', column) }} as date)
    {%- else -%}
    {{ add_to_date('month', shift, dbt.date_trunc('quarter', '(' ~ dbt.dateadd('month', -shift, column) ~ ')')) }}
    {%- endif -%}
{%- endmacro %}

{#- Naive UTC timestamp to the naive local wall-clock time in the named zone. -#}
{% macro to_local_time(column, time_zone) -%}
    {{ return(adapter.dispatch('to_local_time', 'salesops')(column, time_zone)) }}
{%- endmacro %}

{% macro default__to_local_time(column, time_zone) -%}
    timezone({{ time_zone }}, timezone('UTC', {{ column }}))
{%- endmacro %}

{% macro epoch_seconds(column) -%}
    {{ return(adapter.dispatch('epoch_seconds', 'salesops')(column)) }}
{%- endmacro %}

{% macro default__epoch_seconds(column) -%}
    epoch({{ column }})
{%- endmacro %}

{#-
  Business seconds elapsed from a fixed Monday (1970-01-05) to a local wall-clock time, counting
  only business hours (var business_hours_start..business_hours_end) on Monday to Friday.
  The business time between two instants is the difference of this value at each end.
-#}
{% macro business_seconds_since_epoch(local_ts) -%}
    {%- set day_start = var('business_hours_start', 9) | int * 3600 -%}
    {%- set day_length = (var('business_hours_end', 17) | int - var('business_hours_start', 9) | int) * 3600 -%}
    {%- set elapsed = epoch_seconds(local_ts) ~ " - " ~ epoch_seconds("cast('1970-01-05 00:00:00' as " ~ dbt.type_timestamp() ~ ")") -%}
    (
        floor(({{ elapsed }}) / 604800) * {{ 5 * day_length }}
        + least(floor(mod(({{ elapsed }}), 604800) / 86400), 5) * {{ day_length }}
        + case when floor(mod(({{ elapsed }}), 604800) / 86400) < 5
            then least(greatest(mod(({{ elapsed }}), 86400) - {{ day_start }}, 0), {{ day_length }})
            else 0 end
    )
{%- endmacro %}

{% macro percentile(column, fraction) -%}
    {{ return(adapter.dispatch('percentile', 'salesops')(column, fraction)) }}
{%- endmacro %}

{#- Continuous (interpolated) percentile, as a double. -#}
{% macro default__percentile(column, fraction) -%}
    quantile_cont({{ column }}, {{ fraction }})
{%- endmacro %}

{#- Time-zone names the warehouse knows; unknown zones fall back to UTC in staging. -#}
{% macro known_time_zones() -%}
    {{ return(adapter.dispatch('known_time_zones', 'salesops')()) }}
{%- endmacro %}

{% macro default__known_time_zones() -%}
    select name from pg_timezone_names()
{%- endmacro %}

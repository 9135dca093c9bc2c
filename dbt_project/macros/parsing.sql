{#- Typing of raw CRM text. Values that do not parse become null here and are caught by the checks. -#}

{% macro clean_text(column) -%}
    nullif(trim({{ column }}), '')
{%- endmacro %}

{% macro parse_bool(column) -%}
    case
        when lower(trim({{ column }})) in ('1', 'true', 't', 'yes', 'y') then true
        when lower(trim({{ column }})) in ('0', 'false', 'f', 'no', 'n') then false
    end
{%- endmacro %}

{% macro parse_timestamp(column) -%}
    {{ return(adapter.dispatch('parse_timestamp', 'salesops')(column)) }}
{%- endmacro %}

{% macro default__parse_timestamp(column) -%}
    timezone('UTC', try_cast({{ column }} as timestamptz))
{%- endmacro %}

{% macro parse_date(column) -%}
    cast({{ parse_timestamp(column) }} as date)
{%- endmacro %}

{% macro parse_number(column) -%}
    {{ return(adapter.dispatch('parse_number', 'salesops')(column)) }}
{%- endmacro %}

{% macro default__parse_number(column) -%}
    try_cast({{ column }} as double)
{%- endmacro %}

{% macro parse_integer(column) -%}
    cast(round({{ parse_number(column) }}) as bigint)
{%- endmacro %}

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

{#- 'infinity' and '-infinity' cast to timestamps: they are not dates, so they parse to null. -#}
{% macro default__parse_timestamp(column) -%}
    case when isfinite(try_cast({{ column }} as timestamptz))
        then timezone('UTC', try_cast({{ column }} as timestamptz)) end
{%- endmacro %}

{% macro parse_date(column) -%}
    cast({{ parse_timestamp(column) }} as date)
{%- endmacro %}

{% macro parse_number(column) -%}
    {{ return(adapter.dispatch('parse_number', 'salesops')(column)) }}
{%- endmacro %}

{#- 'NaN' and 'Infinity' cast to doubles: they are not amounts, so they parse to null. -#}
{% macro default__parse_number(column) -%}
    case when isfinite(try_cast({{ column }} as double)) then try_cast({{ column }} as double) end
{%- endmacro %}

{% macro parse_integer(column) -%}
    cast({{ round_half_away(parse_number(column)) }} as bigint)
{%- endmacro %}

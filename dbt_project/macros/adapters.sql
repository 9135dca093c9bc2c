{#-
  What differs between warehouses. Models use only dbt's cross-database macros and the dispatched
  macros of this project (adapter.dispatch with the 'salesops' namespace): each has a default__
  implementation (DuckDB's dialect, and whatever other adapter shares it) and, here, a postgres__
  one. Moving to another warehouse means adding <adapter>__ versions of these: parse_timestamp,
  parse_number, round_half_away (macros/parsing.sql and below), to_local_time, epoch_seconds,
  percentile, known_time_zones (macros/dates.sql), json_of_columns (macros/quarantine_rules.sql),
  type_double and warehouse_setup (below).
-#}

{#- on-run-start: what the warehouse needs before any model (PostgreSQL: the parsing functions). -#}
{% macro warehouse_setup() -%}
    {{ return(adapter.dispatch('warehouse_setup', 'salesops')()) }}
{%- endmacro %}

{#- Nothing on DuckDB: an empty hook is not run. -#}
{% macro default__warehouse_setup() -%}
{%- endmacro %}

{#- Schema of the helper functions on PostgreSQL. -#}
{% macro udf_schema() -%}
    {{- target.schema -}}
{%- endmacro %}

{#-
  PostgreSQL has no try_cast: the casts run in PL/pgSQL functions that return null instead of
  failing. A pattern check first keeps out the values PostgreSQL would read but DuckDB would not
  ('now', 'today', '2026-01-01 ', '2026-01-01T10:00Z', 'NaN', ...), and most invalid
  values away from the (slower) exception path. Timestamps without an offset are read as UTC;
  'infinity' and values out of range parse to null, as with DuckDB's isfinite guards. Known
  differences: DuckDB reads digit separators ('1_000') and PostgreSQL does not; a time zone
  name one engine knows and the other does not.
-#}
{% macro postgres__warehouse_setup() -%}
    create schema if not exists {{ udf_schema() }};

    create or replace function {{ udf_schema() }}.salesops_parse_timestamp(value text)
    returns timestamp
    language plpgsql stable
    set timezone to 'UTC'
    as $salesops$
    declare
        parsed timestamptz;
    begin
        if value ~* '^\s*epoch$' then
            return timestamp '1970-01-01 00:00:00';
        end if;
        if value is null or value !~ '^\s*[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([ T][0-9]{1,2}:[0-9]{1,2}(:[0-9]{1,2}(\.[0-9]+)?(Z|[+-][0-9]{2}(:?[0-9]{2})?| [A-Za-z][A-Za-z0-9_/+-]*)?)?)?$' then
            return null;
        end if;
        parsed := value::timestamptz;
        if not isfinite(parsed) then
            return null;
        end if;
        return parsed at time zone 'UTC';
    exception when others then
        return null;
    end
    $salesops$;

    create or replace function {{ udf_schema() }}.salesops_parse_number(value text)
    returns double precision
    language plpgsql immutable
    as $salesops$
    declare
        parsed double precision;
    begin
        if value is null or value !~ '^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$' then
            return null;
        end if;
        parsed := value::double precision;
        if parsed in ('Infinity'::double precision, '-Infinity'::double precision) then
            return null;
        end if;
        return parsed;
    exception when others then
        return null;
    end
    $salesops$;
{%- endmacro %}

{% macro postgres__parse_timestamp(column) -%}
    {{ udf_schema() }}.salesops_parse_timestamp({{ column }})
{%- endmacro %}

{% macro postgres__parse_number(column) -%}
    {{ udf_schema() }}.salesops_parse_number({{ column }})
{%- endmacro %}

{#- Round half away from zero (2.5 -> 3, -2.5 -> -3), as DuckDB's round does on doubles. -#}
{% macro round_half_away(expression) -%}
    {{ return(adapter.dispatch('round_half_away', 'salesops')(expression)) }}
{%- endmacro %}

{% macro default__round_half_away(expression) -%}
    round({{ expression }})
{%- endmacro %}

{#- PostgreSQL rounds doubles half to even; numerics half away from zero. -#}
{% macro postgres__round_half_away(expression) -%}
    round(cast({{ expression }} as numeric))
{%- endmacro %}

{#- An 8-byte float (dbt.type_float() is a 4-byte FLOAT on DuckDB). -#}
{% macro type_double() -%}
    {{ return(adapter.dispatch('type_double', 'salesops')()) }}
{%- endmacro %}

{% macro default__type_double() -%}
    double
{%- endmacro %}

{% macro postgres__type_double() -%}
    double precision
{%- endmacro %}

{#- Naive UTC timestamp to the naive wall-clock time in the named zone. -#}
{% macro postgres__to_local_time(column, time_zone) -%}
    (({{ column }} at time zone 'UTC') at time zone {{ time_zone }})
{%- endmacro %}

{#- Seconds since 1970-01-01 of a naive timestamp, as an exact numeric (mod() needs numeric). -#}
{% macro postgres__epoch_seconds(column) -%}
    extract(epoch from {{ column }})
{%- endmacro %}

{% macro postgres__percentile(column, fraction) -%}
    percentile_cont({{ fraction }}) within group (order by cast({{ column }} as double precision))
{%- endmacro %}

{% macro postgres__known_time_zones() -%}
    select name from pg_timezone_names
{%- endmacro %}

{#- The same text as DuckDB's json_object: {"column":value,...}, no spaces. -#}
{% macro postgres__json_of_columns(columns) -%}
    ('{'
    {%- for column in columns %}
        || '{{ "," if not loop.first }}"{{ column }}":' || coalesce(cast(to_json({{ column }}) as text), 'null')
    {%- endfor %}
        || '}')
{%- endmacro %}

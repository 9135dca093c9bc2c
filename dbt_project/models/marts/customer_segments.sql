with

accounts as (
    select account_id, account_name, industry, number_of_employees
    from {{ ref('stg_crm__accounts') }}
),

as_of as (
    select {{ as_of_date() }} as as_of_date
),

wins as (
    select
        account_id,
        count(*) as won_deals,
        coalesce(sum(amount), 0) as lifetime_won_amount,
        max(close_date) as last_won_date
    from {{ ref('stg_crm__opportunities') }}
    where is_won and account_id is not null
    group by 1
),

buyers as (
    select
        wins.*,
        {{ days_between('wins.last_won_date', 'as_of.as_of_date') }} as recency_days,
        count(*) over () as buyer_count
    from wins
    cross join as_of
),

ranked as (
    select
        *,
        rank() over (order by recency_days desc nulls last) as recency_rank,
        rank() over (order by won_deals) as frequency_rank,
        rank() over (order by lifetime_won_amount) as monetary_rank
    from buyers
),

scored as (
    select
        account_id,
        won_deals,
        lifetime_won_amount,
        last_won_date,
        recency_days,
        1 + cast(floor(5.0 * (recency_rank - 1) / buyer_count) as integer) as recency_score,
        1 + cast(floor(5.0 * (frequency_rank - 1) / buyer_count) as integer) as frequency_score,
        1 + cast(floor(5.0 * (monetary_rank - 1) / buyer_count) as integer) as monetary_score
    from ranked
)

select
    accounts.account_id,
    accounts.account_name,
    {{ size_segment('accounts.number_of_employees') }} as size_segment,
    accounts.industry,
    coalesce(scored.won_deals, 0) as won_deals,
    coalesce(scored.lifetime_won_amount, 0) as lifetime_won_amount,
    scored.last_won_date,
    scored.recency_days,
    scored.recency_score,
    scored.frequency_score,
    scored.monetary_score,
    case
        when scored.account_id is null then 'Prospect'
        when scored.recency_score >= 4 and scored.frequency_score >= 4 then 'Champions'
        when scored.recency_score >= 4 and scored.frequency_score <= 2 then 'New'
        when scored.recency_score >= 3 and scored.frequency_score >= 3 then 'Loyal'
        when scored.frequency_score >= 3 then 'At Risk'
        else 'Hibernating'
    end as rfm_segment
from accounts
left join scored on accounts.account_id = scored.account_id

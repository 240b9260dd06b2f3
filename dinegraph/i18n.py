"""Messages of ``UserError`` by code: Chinese by default, English on ``Accept-Language: en``."""

from __future__ import annotations

from enum import StrEnum

from dinegraph.domain.errors import DomainError, ErrorCode
from dinegraph.domain.recommendations import MealPeriod, Reason, ReasonKind


class Locale(StrEnum):
    ZH = "zh"
    EN = "en"


def locale_from_header(accept_language: str | None) -> Locale:
    """The first supported language the client lists; Chinese when none is."""
    if accept_language:
        for part in accept_language.split(","):
            tag = part.split(";")[0].strip().lower()
            if tag.startswith("en"):
                return Locale.EN
            if tag.startswith("zh") or tag == "*":
                return Locale.ZH
    return Locale.ZH


_MESSAGES: dict[ErrorCode, tuple[str, str]] = {
    ErrorCode.UNAUTHENTICATED: ("请先登录", "Sign in first"),
    ErrorCode.FORBIDDEN: ("没有权限执行此操作", "You are not allowed to do this"),
    ErrorCode.NOT_FOUND: ("找不到该对象", "Not found"),
    ErrorCode.INVALID_ID: ("ID 无效或类型不符", "The ID is malformed or of the wrong type"),
    ErrorCode.INVALID_INPUT: ("输入无效", "Invalid input"),
    ErrorCode.INVALID_URL: (
        "须为 https:// 开头的完整网址",
        "Must be a whole address starting with https://",
    ),
    ErrorCode.REQUIRED: ("此项为必填", "This is required"),
    ErrorCode.TOO_LONG: ("内容过长，最多 {max} 个字符", "Too long: at most {max} characters"),
    ErrorCode.INVALID_CHARACTERS: (
        "含有无法保存的字符（空字符或残缺的 Unicode 字符）",
        "Contains characters that cannot be stored (NUL or a broken Unicode character)",
    ),
    ErrorCode.OUT_OF_RANGE: ("超出范围（{min}–{max}）", "Out of range ({min}–{max})"),
    ErrorCode.INVALID_COORDINATES: ("坐标无效", "Invalid coordinates"),
    ErrorCode.DUPLICATE: ("已存在相同的记录", "Such a record exists already"),
    ErrorCode.CATEGORY_CYCLE: (
        "不能把分类移到它自己或其子分类下",
        "A category cannot move under itself or its subcategories",
    ),
    ErrorCode.CHANNEL_REQUIRED: ("至少选择一个销售渠道", "Choose at least one sales channel"),
    ErrorCode.COMBO_NEEDS_COMPONENTS: (
        "套餐至少包含一个单品",
        "A combo needs at least one component",
    ),
    ErrorCode.INVALID_COMBO_COMPONENT: (
        "套餐组成无效：只能由已存在的非套餐规格组成",
        "Invalid combo component: only existing SKUs of non-combo products",
    ),
    ErrorCode.NEGATIVE_PRICE: ("价格不能为负数", "A price cannot be negative"),
    ErrorCode.PAGE_SIZE_TOO_LARGE: (
        "每页最多 {max} 条",
        "At most {max} items per page",
    ),
    ErrorCode.INVALID_CURSOR: ("分页游标无效", "Invalid page cursor"),
    ErrorCode.OUT_OF_STOCK: ("库存不足，仅剩 {available} 件", "Out of stock: {available} left"),
    ErrorCode.SOLD_OUT: ("该菜品今日已沽清", "Sold out for today"),
    ErrorCode.NOT_TRACKED: (
        "该规格不计库存，只能设置沽清",
        "This SKU is made to order: it can only be marked sold out",
    ),
    ErrorCode.TRACKED: (
        "该规格按库存计数，请调整库存",
        "This SKU is counted: change its stock level instead",
    ),
    ErrorCode.INVALID_PHONE: ("手机号格式不正确", "Not a valid mobile number"),
    ErrorCode.RATE_LIMITED: (
        "操作太频繁，请 {seconds} 秒后再试",
        "Too many tries: wait {seconds} s",
    ),
    ErrorCode.INVALID_CODE: ("验证码错误", "Wrong code"),
    ErrorCode.CODE_EXPIRED: ("验证码已过期，请重新获取", "The code has expired: ask for a new one"),
    ErrorCode.CODE_LOCKED: (
        "错误次数过多，请重新获取验证码",
        "Too many wrong tries: ask for a new code",
    ),
    ErrorCode.INVALID_TOKEN: ("登录已失效，请重新登录", "The session has ended: sign in again"),
    ErrorCode.ALREADY_CHECKED_IN: ("今天已经签到过了", "You have checked in today already"),
    ErrorCode.INSUFFICIENT_POINTS: ("积分不足", "Not enough points"),
    ErrorCode.COUPON_SOLD_OUT: ("优惠券已被抢光", "All coupons have been claimed"),
    ErrorCode.CLAIM_LIMIT_REACHED: ("已达领取上限", "You have claimed as many as allowed"),
    ErrorCode.CLAIM_NOT_OPEN: ("不在领取时间内", "Not open for claiming now"),
    ErrorCode.NOT_ELIGIBLE: ("不符合领取条件", "You are not eligible for this coupon"),
    ErrorCode.TEMPLATE_STOPPED: ("该优惠券已停止发放", "This coupon is no longer issued"),
    ErrorCode.INVALID_TRANSITION: ("当前状态不允许此操作", "Not allowed in the current state"),
    ErrorCode.INVALID_SHARE_CODE: ("分享链接无效", "Invalid share link"),
    ErrorCode.NO_STORE_CAN_SERVE: (
        "附近没有门店能完成这笔订单",
        "No store nearby can serve this order",
    ),
    ErrorCode.STORE_CANNOT_SERVE: (
        "该门店暂时无法接单（{reason}）",
        "This store cannot take the order now ({reason})",
    ),
    ErrorCode.NOT_ON_CHANNEL: ("该商品不支持当前就餐方式", "Not sold on this channel"),
    ErrorCode.COUPON_NOT_APPLICABLE: (
        "该优惠券不能用于这笔订单（{reason}）",
        "This coupon cannot be used on this order ({reason})",
    ),
    ErrorCode.NOTHING_TO_REFUND: ("没有可退的金额", "Nothing is left to refund"),
    ErrorCode.REFUND_PENDING: (
        "该订单已有退款申请待门店处理",
        "A refund request of this order is waiting for the store",
    ),
    ErrorCode.PAYMENT_MISMATCH: ("支付金额与订单不符", "The payment does not match the order"),
    ErrorCode.NOT_AVAILABLE: ("该功能当前不可用", "Not available here"),
    ErrorCode.WECHAT_REQUIRED: (
        "请在微信中登录后支付",
        "Sign in with WeChat to pay",
    ),
    ErrorCode.PAYMENT_PROVIDER_UNAVAILABLE: (
        "微信支付暂时不可用，请稍后再试",
        "WeChat Pay is not available right now; try again shortly",
    ),
    ErrorCode.IMPLAUSIBLE_POSITION: (
        "骑手位置不可信（跳变过大或离门店过远）",
        "Implausible courier position (too far a jump, or too far from the store)",
    ),
    ErrorCode.WRONG_PROVIDER: (
        "该配送单不由此合作方承运",
        "This delivery is not carried by this partner",
    ),
    ErrorCode.INVALID_WINDOW: (
        "活动时间不正确：结束须晚于开始和现在，且不超过 92 天",
        "Invalid window: the end must follow the start and now, within 92 days",
    ),
    ErrorCode.CAMPAIGN_NOT_STARTED: ("活动还未开始", "The campaign has not started yet"),
    ErrorCode.CAMPAIGN_ENDED: ("活动已结束", "The campaign has ended"),
    ErrorCode.NOT_IN_CAMPAIGN: ("不在本次活动范围内", "Not part of this campaign"),
    ErrorCode.CAMPAIGN_LIMIT_REACHED: (
        "已达本活动的参与上限",
        "You have taken part in this campaign as often as allowed",
    ),
    ErrorCode.SHARE_CODE_EXPIRED: ("分享链接已过期", "This share link has expired"),
    ErrorCode.GROUP_FULL: ("该团已满员", "This group is full"),
    ErrorCode.GROUP_CLOSED: ("该团已结束", "This group is no longer open"),
    ErrorCode.ALREADY_JOINED: ("你已在这个团里了", "You are in this group already"),
    ErrorCode.ALREADY_HELPED: ("你已经帮砍过了", "You have helped this bargain already"),
    ErrorCode.OWN_BARGAIN: ("不能给自己砍价", "You cannot help your own bargain"),
    ErrorCode.HELP_LIMIT_REACHED: (
        "今天的帮砍次数已用完",
        "You have helped as often as allowed today",
    ),
    ErrorCode.BARGAIN_CLOSED: ("该砍价已结束", "This bargain is over"),
    ErrorCode.PROVIDER_UNAVAILABLE: (
        "服务暂时不可用，请稍后再试",
        "The service is unavailable just now: try again shortly",
    ),
    ErrorCode.IDEMPOTENCY_KEY_REUSED: (
        "该单号已用于内容不同的请求",
        "This key was already used for a different request",
    ),
    # Staff sign-in and accounts.
    ErrorCode.INVALID_CREDENTIALS: ("用户名或密码错误", "Wrong username or password"),
    ErrorCode.ACCOUNT_LOCKED: (
        "错误次数过多，账号已锁定至 {until}",
        "Too many failed attempts: the account is locked until {until}",
    ),
    ErrorCode.TOTP_REQUIRED: ("请输入动态验证码", "Enter the code of your authenticator app"),
    ErrorCode.INVALID_TOTP: ("动态验证码错误或已使用", "The code is wrong or was used already"),
    ErrorCode.ACCOUNT_DISABLED: ("账号已停用", "This account is disabled"),
    ErrorCode.WEAK_PASSWORD: (
        "密码至少 {min_length} 位，且不能与用户名相同",
        "A password has at least {min_length} characters and differs from the username",
    ),
    ErrorCode.PASSWORD_CHANGE_REQUIRED: (
        "该账号使用的是临时密码，请先修改密码",
        "This account has a temporary password: change it first",
    ),
}


def message_for(error: DomainError, locale: Locale) -> str:
    zh, en = _MESSAGES.get(error.code, ("请求无法完成", "The request cannot be completed"))
    template = en if locale is Locale.EN else zh
    try:
        return template.format(**error.params)
    except (KeyError, IndexError):
        return template


# 猜你喜欢: the reason shown under a recommended product (domain.recommendations).
_REASONS: dict[ReasonKind, tuple[str, str]] = {
    ReasonKind.BOUGHT_TOGETHER: ("常与{subject}一起购买", "Often bought with {subject}"),
    ReasonKind.ALSO_LIKED: ("喜欢{subject}的人也喜欢", "People who like {subject} like this too"),
    ReasonKind.TASTE: ("你常点{subject}", "You often order {subject}"),
    ReasonKind.ORDER_AGAIN: ("再来一份{subject}", "Order {subject} again"),
    ReasonKind.RAINY_DAY: ("雨天热汤", "Something hot for a rainy day"),
    ReasonKind.COLD_DAY: ("天冷暖一暖", "Something warm for a cold day"),
    ReasonKind.HOT_DAY: ("天热来点清凉", "Something cool for a hot day"),
    ReasonKind.POPULAR_NOW: ("{subject}人气", "Popular at {subject}"),
    ReasonKind.POPULAR: ("本店人气", "Popular at this store"),
}
_PERIODS: dict[str, tuple[str, str]] = {
    MealPeriod.BREAKFAST: ("早茶", "breakfast"),
    MealPeriod.LUNCH: ("午市", "lunch"),
    MealPeriod.AFTERNOON: ("下午茶", "tea time"),
    MealPeriod.DINNER: ("晚市", "dinner"),
    MealPeriod.LATE_NIGHT: ("夜宵", "late night"),
}


def reason_text(reason: Reason, locale: Locale) -> str:
    """What the page shows under a recommendation: "常与糖醋排骨一起购买", "雨天热汤"."""
    english = locale is Locale.EN
    zh, en = _REASONS[reason.kind]
    subject = reason.subject
    if reason.kind is ReasonKind.POPULAR_NOW and subject in _PERIODS:
        subject = _PERIODS[subject][1 if english else 0]
    return (en if english else zh).format(subject=subject)

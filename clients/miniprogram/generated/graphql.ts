export type Maybe<T> = T | null;
export type InputMaybe<T> = Maybe<T>;
export type Exact<T extends { [key: string]: unknown }> = { [K in keyof T]: T[K] };
export type MakeOptional<T, K extends keyof T> = Omit<T, K> & { [SubKey in K]?: Maybe<T[SubKey]> };
export type MakeMaybe<T, K extends keyof T> = Omit<T, K> & { [SubKey in K]: Maybe<T[SubKey]> };
export type MakeEmpty<T extends { [key: string]: unknown }, K extends keyof T> = { [_ in K]?: never };
export type Incremental<T> = T | { [P in keyof T]?: P extends ' $fragmentName' | '__typename' ? T[P] : never };
/** All built-in and custom scalars, mapped to their actual values */
export type Scalars = {
  ID: { input: string; output: string; }
  String: { input: string; output: string; }
  Boolean: { input: boolean; output: boolean; }
  Int: { input: number; output: number; }
  Float: { input: number; output: number; }
  /** Date (isoformat) */
  Date: { input: string; output: string; }
  /** Date with time (isoformat) */
  DateTime: { input: string; output: string; }
};

export type AddRiderInput = {
  name: Scalars['String']['input'];
  phone: Scalars['String']['input'];
  storeId: Scalars['ID']['input'];
};

/** Where to deliver, and to whom. */
export type AddressInput = {
  contactName: Scalars['String']['input'];
  contactPhone: Scalars['String']['input'];
  detail: Scalars['String']['input'];
  lat: Scalars['Float']['input'];
  lng: Scalars['Float']['input'];
};

export type AdjustMemberPointsInput = {
  delta: Scalars['Int']['input'];
  memberId: Scalars['ID']['input'];
  /** Why; kept in the audit log (at most 200). */
  reason: Scalars['String']['input'];
  /** The idempotency key, e.g. the ticket number; retry-safe. */
  reference: Scalars['String']['input'];
};

export type AdjustStockInput = {
  /** Units to add (positive) or remove (negative). */
  delta: Scalars['Int']['input'];
  reason: Scalars['String']['input'];
  reference: Scalars['String']['input'];
  skuId: Scalars['ID']['input'];
  storeId: Scalars['ID']['input'];
};

export type ApproveRefundInput = {
  refundId: Scalars['ID']['input'];
};

/** Who made a change. */
export type AuditActorKind =
  | 'CLI'
  | 'PARTNER'
  | 'STAFF'
  | 'SYSTEM';

/** Every filter given must hold. */
export type AuditLogFilter = {
  action?: InputMaybe<Scalars['String']['input']>;
  actorKind?: InputMaybe<AuditActorKind>;
  apiKeyId?: InputMaybe<Scalars['ID']['input']>;
  /** Inclusive. */
  from?: InputMaybe<Scalars['DateTime']['input']>;
  /** The global ID of the object written (an order, a SKU). */
  objectId?: InputMaybe<Scalars['ID']['input']>;
  staffId?: InputMaybe<Scalars['ID']['input']>;
  storeId?: InputMaybe<Scalars['ID']['input']>;
  /** Exclusive. */
  to?: InputMaybe<Scalars['DateTime']['input']>;
};

/** Done, or refused for rights. */
export type AuditOutcome =
  | 'DENIED'
  | 'DONE';

export type BargainStatus =
  | 'COMPLETE'
  | 'EXPIRED'
  | 'OPEN'
  | 'PURCHASED';

export type BehaviourEventInput = {
  /** The client's own id (8–64 of A-Z a-z 0-9 _ - : .): a replay is ignored. */
  clientEventId: Scalars['String']['input'];
  kind: BehaviourEventKind;
  occurredAt?: InputMaybe<Scalars['DateTime']['input']>;
  productId?: InputMaybe<Scalars['ID']['input']>;
  /** SEARCH: what was searched. */
  query?: InputMaybe<Scalars['String']['input']>;
  storeId?: InputMaybe<Scalars['ID']['input']>;
};

/** VIEW_PRODUCT, SEARCH, FAVOURITE, ADD_TO_CART (orders are recorded as orders). */
export type BehaviourEventKind =
  | 'ADD_TO_CART'
  | 'FAVOURITE'
  | 'SEARCH'
  | 'VIEW_PRODUCT';

export type BindWechatPhoneInput = {
  /** e.detail.code of a getPhoneNumber button (open-type=getPhoneNumber). */
  code: Scalars['String']['input'];
};

/** A SKU for the campaign and its price (a bargain's floor). */
export type CampaignItemInput = {
  priceFen: Scalars['Int']['input'];
  skuId: Scalars['ID']['input'];
};

export type CampaignKind =
  | 'BARGAIN'
  | 'FLASH_SALE'
  | 'GROUP_BUY';

/** How to make a campaign order. Each part may be left out where the campaign allows only one (pickup is the default channel when allowed); a joiner gets the group's store. */
export type CampaignOrderInput = {
  address?: InputMaybe<AddressInput>;
  channel?: InputMaybe<Channel>;
  /** Made once per checkout: a retry returns the same order. */
  idempotencyKey?: InputMaybe<Scalars['String']['input']>;
  note?: InputMaybe<Scalars['String']['input']>;
  skuId?: InputMaybe<Scalars['ID']['input']>;
  storeId?: InputMaybe<Scalars['ID']['input']>;
};

export type CampaignState =
  | 'ENDED'
  | 'RUNNING'
  | 'SCHEDULED';

export type CancelPartnerOrderInput = {
  externalId: Scalars['String']['input'];
  reason?: Scalars['String']['input'];
  source: OrderChannel;
};

/** How a store's platform is chosen at dispatch: the cheapest or fastest quote, or its own order of preference. */
export type CarrierRule =
  | 'CHEAPEST'
  | 'FASTEST'
  | 'PREFERRED';

export type CartInput = {
  channel: Channel;
  deliveryFeeFen?: Scalars['Int']['input'];
  lines: Array<CartLineInput>;
  storeId: Scalars['ID']['input'];
};

export type CartLineInput = {
  quantity: Scalars['Int']['input'];
  skuId: Scalars['ID']['input'];
};

export type ChangeMyPasswordInput = {
  currentPassword: Scalars['String']['input'];
  newPassword: Scalars['String']['input'];
};

/** Where a product is sold. */
export type Channel =
  | 'DELIVERY'
  | 'DINE_IN'
  | 'PICKUP'
  | 'RETAIL';

export type ComboComponentInput = {
  quantity?: Scalars['Int']['input'];
  skuId: Scalars['ID']['input'];
};

export type ConfirmTotpEnrolmentInput = {
  code: Scalars['String']['input'];
};

export type CouponInapplicableReason =
  | 'BELOW_THRESHOLD'
  | 'EXPIRED'
  | 'NEW_MEMBERS_ONLY'
  | 'NOT_STARTED'
  | 'NO_DELIVERY_FEE'
  | 'OUT_OF_SCOPE'
  | 'TIER_TOO_LOW';

export type CouponIssueJobStatus =
  | 'DONE'
  | 'QUEUED'
  | 'RUNNING'
  | 'SOLD_OUT';

/** 满减, 无门槛, 折扣, 免配送费. */
export type CouponKind =
  | 'FREE_DELIVERY'
  | 'NO_THRESHOLD'
  | 'PERCENT'
  | 'THRESHOLD';

export type CouponScopeInput = {
  categoryIds?: Array<Scalars['ID']['input']>;
  channels?: Array<Channel>;
  productIds?: Array<Scalars['ID']['input']>;
  storeIds?: Array<Scalars['ID']['input']>;
};

export type CouponStatus =
  | 'AVAILABLE'
  | 'EXPIRED'
  | 'LOCKED'
  | 'USED';

export type CouponTemplateStatus =
  | 'ACTIVE'
  | 'STOPPED';

export type CourierInput = {
  name: Scalars['String']['input'];
  phone: Scalars['String']['input'];
};

export type CreateApiKeyInput = {
  name: Scalars['String']['input'];
  /** The delivery platform of a delivery:write key. */
  partner?: InputMaybe<DeliveryProvider>;
  /** e.g. stock:write, orders:read. */
  scopes: Array<Scalars['String']['input']>;
  /** The stores it acts on; null: every store. */
  storeIds?: InputMaybe<Array<Scalars['ID']['input']>>;
};

export type CreateCampaignInput = {
  /** BARGAIN: 1 to 100. */
  bargainHelps?: InputMaybe<Scalars['Int']['input']>;
  /** BARGAIN: time to buy. */
  bargainHours?: Scalars['Int']['input'];
  channels: Array<Channel>;
  /** BARGAIN: helps one member may give per day. */
  dailyHelpCap?: Scalars['Int']['input'];
  endsAt: Scalars['DateTime']['input'];
  /** GROUP_BUY: time to fill. */
  groupHours?: Scalars['Int']['input'];
  /** GROUP_BUY: 2 to 20. */
  groupSize?: InputMaybe<Scalars['Int']['input']>;
  items: Array<CampaignItemInput>;
  kind: CampaignKind;
  name: Scalars['String']['input'];
  newMembersOnly?: Scalars['Boolean']['input'];
  perMemberLimit?: Scalars['Int']['input'];
  /** Units of each SKU each store sets aside from its stock for the campaign. */
  quotaPerStore: Scalars['Int']['input'];
  startsAt: Scalars['DateTime']['input'];
  storeIds: Array<Scalars['ID']['input']>;
};

export type CreateCategoryInput = {
  name: Scalars['String']['input'];
  parentId?: InputMaybe<Scalars['ID']['input']>;
  sort?: Scalars['Int']['input'];
};

export type CreateCouponTemplateInput = {
  amountOffFen?: Scalars['Int']['input'];
  capFen?: InputMaybe<Scalars['Int']['input']>;
  claimEndsAt?: InputMaybe<Scalars['DateTime']['input']>;
  claimStartsAt?: InputMaybe<Scalars['DateTime']['input']>;
  fissionBonusTemplateId?: InputMaybe<Scalars['ID']['input']>;
  fissionFriends?: InputMaybe<Scalars['Int']['input']>;
  kind: CouponKind;
  minTier?: Tier;
  newMembersOnly?: Scalars['Boolean']['input'];
  perMemberLimit?: Scalars['Int']['input'];
  percentOff?: Scalars['Int']['input'];
  scope?: InputMaybe<CouponScopeInput>;
  thresholdFen?: Scalars['Int']['input'];
  title: Scalars['String']['input'];
  totalQuantity: Scalars['Int']['input'];
  validDays?: InputMaybe<Scalars['Int']['input']>;
  validFrom?: InputMaybe<Scalars['DateTime']['input']>;
  validUntil?: InputMaybe<Scalars['DateTime']['input']>;
};

export type CreateKitchenStationInput = {
  isDefault?: Scalars['Boolean']['input'];
  name: Scalars['String']['input'];
  /** Default: after the others. */
  sort?: InputMaybe<Scalars['Int']['input']>;
  storeId: Scalars['ID']['input'];
};

export type CreateProductInput = {
  categoryId: Scalars['ID']['input'];
  channels: Array<Channel>;
  description?: Scalars['String']['input'];
  imageUrls?: Array<Scalars['String']['input']>;
  kind: ProductKind;
  listed?: Scalars['Boolean']['input'];
  name: Scalars['String']['input'];
  skus: Array<SkuInput>;
  sort?: Scalars['Int']['input'];
  tags?: Array<Scalars['String']['input']>;
};

export type CreateSkuInput = {
  components?: Array<ComboComponentInput>;
  name: Scalars['String']['input'];
  priceFen: Scalars['Int']['input'];
  productId: Scalars['ID']['input'];
  specs?: Array<SpecOptionInput>;
  tracked?: InputMaybe<Scalars['Boolean']['input']>;
};

export type CreateStaffAccountInput = {
  displayName: Scalars['String']['input'];
  /** A first password (10+ characters); the holder changes it at sign-in. */
  password: Scalars['String']['input'];
  role: StaffRole;
  /** A store manager's stores (at least one). */
  storeIds?: Array<Scalars['ID']['input']>;
  username: Scalars['String']['input'];
};

export type DeleteAddressInput = {
  id: Scalars['ID']['input'];
};

/** Who carries an order. */
export type DeliveryProvider =
  | 'DADA'
  | 'MEITUAN'
  | 'OWN_RIDER'
  | 'SF_INTRA_CITY';

export type DeliveryStatus =
  | 'ARRIVED_AT_STORE'
  | 'ASSIGNED'
  | 'DELIVERED'
  | 'DELIVERING'
  | 'FAILED'
  | 'PENDING'
  | 'PICKED_UP';

/** Why delivery is free. */
export type DeliveryWaiver =
  | 'ABOVE_THRESHOLD'
  | 'COUPON'
  | 'TIER';

export type DisableTotpInput = {
  password: Scalars['String']['input'];
};

export type DispatchDeliveryInput = {
  orderId: Scalars['ID']['input'];
  /** OWN_RIDER: send this rider rather than the nearest idle one. */
  riderId?: InputMaybe<Scalars['ID']['input']>;
};

/** Stable codes of expected failures. */
export type ErrorCode =
  | 'ACCOUNT_DISABLED'
  | 'ACCOUNT_LOCKED'
  | 'ALREADY_CHECKED_IN'
  | 'ALREADY_HELPED'
  | 'ALREADY_JOINED'
  | 'BARGAIN_CLOSED'
  | 'CAMPAIGN_ENDED'
  | 'CAMPAIGN_LIMIT_REACHED'
  | 'CAMPAIGN_NOT_STARTED'
  | 'CATEGORY_CYCLE'
  | 'CHANNEL_REQUIRED'
  | 'CLAIM_LIMIT_REACHED'
  | 'CLAIM_NOT_OPEN'
  | 'CODE_EXPIRED'
  | 'CODE_LOCKED'
  | 'COMBO_NEEDS_COMPONENTS'
  | 'COUPON_NOT_APPLICABLE'
  | 'COUPON_SOLD_OUT'
  | 'DUPLICATE'
  | 'FORBIDDEN'
  | 'GROUP_CLOSED'
  | 'GROUP_FULL'
  | 'HELP_LIMIT_REACHED'
  | 'IDEMPOTENCY_KEY_REUSED'
  | 'IMPLAUSIBLE_POSITION'
  | 'INSUFFICIENT_POINTS'
  | 'INVALID_CHARACTERS'
  | 'INVALID_CODE'
  | 'INVALID_COMBO_COMPONENT'
  | 'INVALID_COORDINATES'
  | 'INVALID_CREDENTIALS'
  | 'INVALID_CURSOR'
  | 'INVALID_ID'
  | 'INVALID_INPUT'
  | 'INVALID_PHONE'
  | 'INVALID_SHARE_CODE'
  | 'INVALID_TOKEN'
  | 'INVALID_TOTP'
  | 'INVALID_TRANSITION'
  | 'INVALID_URL'
  | 'INVALID_WINDOW'
  | 'NEGATIVE_PRICE'
  | 'NOTHING_TO_REFUND'
  | 'NOT_AVAILABLE'
  | 'NOT_ELIGIBLE'
  | 'NOT_FOUND'
  | 'NOT_IN_CAMPAIGN'
  | 'NOT_ON_CHANNEL'
  | 'NOT_TRACKED'
  | 'NO_STORE_CAN_SERVE'
  | 'OUT_OF_RANGE'
  | 'OUT_OF_STOCK'
  | 'OWN_BARGAIN'
  | 'PAGE_SIZE_TOO_LARGE'
  | 'PASSWORD_CHANGE_REQUIRED'
  | 'PAYMENT_MISMATCH'
  | 'PAYMENT_PROVIDER_UNAVAILABLE'
  | 'PROVIDER_UNAVAILABLE'
  | 'RATE_LIMITED'
  | 'REFUND_PENDING'
  | 'REQUIRED'
  | 'SHARE_CODE_EXPIRED'
  | 'SOLD_OUT'
  | 'STORE_CANNOT_SERVE'
  | 'TEMPLATE_STOPPED'
  | 'TOO_LONG'
  | 'TOTP_REQUIRED'
  | 'TRACKED'
  | 'UNAUTHENTICATED'
  | 'WEAK_PASSWORD'
  | 'WECHAT_REQUIRED'
  | 'WRONG_PROVIDER';

/** A point in GCJ-02 coordinates, as the mini-program sends it. */
export type GeoPointInput = {
  lat: Scalars['Float']['input'];
  lng: Scalars['Float']['input'];
};

export type GroupBuyStatus =
  | 'FAILED'
  | 'OPEN'
  | 'SUCCEEDED';

export type IssueCouponToSegmentInput = {
  /** Members with no order or check-in for this many days. */
  dormantDays?: InputMaybe<Scalars['Int']['input']>;
  templateId: Scalars['ID']['input'];
  tier?: InputMaybe<Tier>;
};

/** NORMAL, SILVER, GOLD, BLACK_DIAMOND. */
export type MemberTier =
  | 'BLACK_DIAMOND'
  | 'GOLD'
  | 'NORMAL'
  | 'SILVER';

/** Where an order was taken: the mini-program, the store's till or a platform. */
export type OrderChannel =
  | 'DOUYIN'
  | 'ELEME'
  | 'MEITUAN'
  | 'MINI_PROGRAM'
  | 'POS';

/** Why the coupon is left out. */
export type OrderCouponProblem =
  | 'BELOW_THRESHOLD'
  | 'EXPIRED'
  | 'NEW_MEMBERS_ONLY'
  | 'NOT_AVAILABLE'
  | 'NOT_FOUND'
  | 'NOT_STARTED'
  | 'NO_DELIVERY_FEE'
  | 'OUT_OF_SCOPE'
  | 'TIER_TOO_LOW';

export type OrderLineInput = {
  quantity: Scalars['Int']['input'];
  skuId: Scalars['ID']['input'];
};

/** Why a line cannot be ordered. */
export type OrderLineProblem =
  | 'NOT_FOUND'
  | 'NOT_ON_CHANNEL'
  | 'OUT_OF_STOCK'
  | 'SOLD_OUT';

export type OrderStatus =
  | 'ACCEPTED'
  | 'CANCELLED'
  | 'COMPLETED'
  | 'DELIVERED'
  | 'DELIVERING'
  | 'GROUPING'
  | 'PAID'
  | 'PENDING_PAYMENT'
  | 'PICKED_UP'
  | 'PREPARING'
  | 'READY'
  | 'REFUNDED';

/** PENDING: to be made (again); DONE: the provider took it; FAILED: refused, or out of attempts, for an operator to look at. */
export type OutboundCallStatus =
  | 'DONE'
  | 'FAILED'
  | 'PENDING';

/** A receipt printer's paper: MM58 prints 32 columns, MM80 48. */
export type PaperWidth =
  | 'MM58'
  | 'MM80';

export type PartnerOrderLineInput = {
  /** For this line, e.g. 不要香菜. */
  note?: Scalars['String']['input'];
  quantity: Scalars['Int']['input'];
  skuId: Scalars['ID']['input'];
  /** What the customer was charged per unit; the store's price when left out. */
  unitPriceFen?: InputMaybe<Scalars['Int']['input']>;
};

export type PlaceOrderInput = {
  address?: InputMaybe<AddressInput>;
  channel: Channel;
  couponId?: InputMaybe<Scalars['ID']['input']>;
  /** Made once per checkout by the client: a retry returns the same order. */
  idempotencyKey: Scalars['String']['input'];
  lines: Array<OrderLineInput>;
  note?: InputMaybe<Scalars['String']['input']>;
  /** Pins the store (pickup, dine-in); delivery is routed without. */
  storeId?: InputMaybe<Scalars['ID']['input']>;
};

export type PointsKind =
  | 'ADJUST'
  | 'CHECK_IN'
  | 'EARN'
  | 'EXPIRE'
  | 'REDEEM'
  | 'REFUND';

export type ProductIdInput = {
  id: Scalars['ID']['input'];
};

/** DISH made to order, COMBO of other SKUs, RETAIL pre-made goods. */
export type ProductKind =
  | 'COMBO'
  | 'DISH'
  | 'RETAIL';

/** A cart to price: routed to the best store unless one is given. */
export type QuoteOrderInput = {
  address?: InputMaybe<AddressInput>;
  channel: Channel;
  couponId?: InputMaybe<Scalars['ID']['input']>;
  lines: Array<OrderLineInput>;
  storeId?: InputMaybe<Scalars['ID']['input']>;
};

/** Where and when the member is looking: position and weather. */
export type RecommendationContextInput = {
  lat?: InputMaybe<Scalars['Float']['input']>;
  lng?: InputMaybe<Scalars['Float']['input']>;
  weather?: InputMaybe<Weather>;
};

export type RecommendationReasonKind =
  | 'ALSO_LIKED'
  | 'BOUGHT_TOGETHER'
  | 'COLD_DAY'
  | 'HOT_DAY'
  | 'ORDER_AGAIN'
  | 'POPULAR'
  | 'POPULAR_NOW'
  | 'RAINY_DAY'
  | 'TASTE';

/** The page: HOME, PRODUCT, CART, ORDER_DONE. */
export type RecommendationScene =
  | 'CART'
  | 'HOME'
  | 'ORDER_DONE'
  | 'PRODUCT';

export type RecordPartnerOrderInput = {
  customerNote?: Scalars['String']['input'];
  /** The order's id at the source; with the source it names one order, so a retry records nothing twice. */
  externalId: Scalars['String']['input'];
  /** DINE_IN, PICKUP (自取/takeaway) or DELIVERY. */
  fulfilment: Channel;
  lines: Array<PartnerOrderLineInput>;
  /** What the customer paid, in fen. */
  paidFen: Scalars['Int']['input'];
  /** When the customer or the platform's rider comes for it. */
  pickupAt?: InputMaybe<Scalars['DateTime']['input']>;
  /** The platform's 取餐号. */
  pickupCode?: InputMaybe<Scalars['String']['input']>;
  /** When the customer ordered; now when left out. */
  placedAt?: InputMaybe<Scalars['DateTime']['input']>;
  /** The till (POS) or the platform. */
  source: OrderChannel;
  storeId: Scalars['ID']['input'];
  tableNo?: InputMaybe<Scalars['String']['input']>;
};

export type RecordSaleInput = {
  /** The order number in the selling system; it makes retries harmless. */
  externalOrderId: Scalars['String']['input'];
  lines: Array<SaleLineInput>;
  source: SaleSource;
  storeId: Scalars['ID']['input'];
};

export type RefreshStaffSessionInput = {
  refreshToken: Scalars['String']['input'];
};

export type RefundLineInput = {
  lineId: Scalars['Int']['input'];
  quantity: Scalars['Int']['input'];
};

export type RefundOrderInput = {
  /** A retry with it refunds nothing more. */
  idempotencyKey: Scalars['String']['input'];
  /** Units to refund; everything not yet refunded when left out. */
  lines?: InputMaybe<Array<RefundLineInput>>;
  orderId: Scalars['ID']['input'];
  reason: Scalars['String']['input'];
};

export type RefundRequester =
  | 'MEMBER'
  | 'STAFF'
  | 'SYSTEM';

/** REQUESTED → APPROVED → SUBMITTED → REFUNDED; or REFUSED by the store, or FAILED at the payment provider. */
export type RefundStatus =
  | 'APPROVED'
  | 'FAILED'
  | 'REFUNDED'
  | 'REFUSED'
  | 'REQUESTED'
  | 'SUBMITTED';

export type RefuseRefundInput = {
  /** Shown to the member. */
  reason: Scalars['String']['input'];
  refundId: Scalars['ID']['input'];
};

export type ReorderKitchenStationsInput = {
  /** Every station of the store, in the order wanted. */
  stationIds: Array<Scalars['ID']['input']>;
  storeId: Scalars['ID']['input'];
};

export type ReportCourierPositionInput = {
  deliveryId: Scalars['ID']['input'];
  lat: Scalars['Float']['input'];
  lng: Scalars['Float']['input'];
  /** When the courier's device took it. */
  recordedAt: Scalars['DateTime']['input'];
};

export type ReportDeliveryStatusInput = {
  at?: InputMaybe<Scalars['DateTime']['input']>;
  courier?: InputMaybe<CourierInput>;
  deliveryId: Scalars['ID']['input'];
  status: DeliveryStatus;
};

export type RequestRefundInput = {
  /** Made once per request by the client: a retry returns the same refund. */
  idempotencyKey: Scalars['String']['input'];
  /** Units to refund; everything not yet refunded when left out. */
  lines?: InputMaybe<Array<RefundLineInput>>;
  orderId: Scalars['ID']['input'];
  reason: Scalars['String']['input'];
};

export type ResetStaffPasswordInput = {
  id: Scalars['ID']['input'];
  temporaryPassword: Scalars['String']['input'];
};

export type RestockInput = {
  quantity: Scalars['Int']['input'];
  reason?: Scalars['String']['input'];
  /** e.g. the delivery note number; retry-safe. */
  reference: Scalars['String']['input'];
  skuId: Scalars['ID']['input'];
  storeId: Scalars['ID']['input'];
};

export type RetryOutboundCallInput = {
  id: Scalars['ID']['input'];
};

export type RevokeApiKeyInput = {
  id: Scalars['ID']['input'];
};

export type RouteToKitchenStationInput = {
  categoryIds?: Array<Scalars['ID']['input']>;
  productIds?: Array<Scalars['ID']['input']>;
  /** null: back to the category's station, or the default. */
  stationId?: InputMaybe<Scalars['ID']['input']>;
  storeId: Scalars['ID']['input'];
};

export type SaleLineInput = {
  quantity: Scalars['Int']['input'];
  skuId: Scalars['ID']['input'];
};

/** Where a sale was made. */
export type SaleSource =
  | 'MINI_PROGRAM'
  | 'POS'
  | 'TAKEAWAY';

export type SaveAddressInput = {
  address: Scalars['String']['input'];
  contactName: Scalars['String']['input'];
  contactPhone: Scalars['String']['input'];
  /** Omit to add one. */
  id?: InputMaybe<Scalars['ID']['input']>;
  isDefault?: Scalars['Boolean']['input'];
  location: GeoPointInput;
};

/** What made a product match a search, best first: its name (whole, its beginning, its words), a tag, a synonym, its category, its initials or pinyin, a typo away from its name, or its description. */
export type SearchMatch =
  | 'CATEGORY'
  | 'DESCRIPTION'
  | 'INITIALS'
  | 'NAME'
  | 'NAME_PREFIX'
  | 'NAME_WORDS'
  | 'PINYIN'
  | 'SYNONYM'
  | 'TAG'
  | 'TYPO';

export type SetDeliveryProviderInput = {
  /** Platforms to ask for quotes at dispatch, in order of preference (unset: unchanged; empty: provider alone). */
  platforms?: InputMaybe<Array<DeliveryProvider>>;
  provider: DeliveryProvider;
  /** How one of the platforms is chosen (unset: unchanged). */
  rule?: InputMaybe<CarrierRule>;
  storeId: Scalars['ID']['input'];
};

export type SetLowStockThresholdInput = {
  skuId: Scalars['ID']['input'];
  storeId: Scalars['ID']['input'];
  threshold: Scalars['Int']['input'];
};

export type SetSearchSynonymsInput = {
  /** Words customers type for it (麻小); empty forgets the term. */
  synonyms: Array<Scalars['String']['input']>;
  /** The word as products are named (小龙虾). */
  term: Scalars['String']['input'];
};

export type SetSoldOutInput = {
  skuId: Scalars['ID']['input'];
  soldOut: Scalars['Boolean']['input'];
  storeId: Scalars['ID']['input'];
};

export type SetStorePriceInput = {
  /** The store's price; null removes the override. */
  priceFen?: InputMaybe<Scalars['Int']['input']>;
  skuId: Scalars['ID']['input'];
  storeId: Scalars['ID']['input'];
};

export type SkuInput = {
  /** For a COMBO product: the SKUs it is made of. */
  components?: Array<ComboComponentInput>;
  name: Scalars['String']['input'];
  priceFen: Scalars['Int']['input'];
  specs?: Array<SpecOptionInput>;
  /** Counted per store; defaults to true for RETAIL products. */
  tracked?: InputMaybe<Scalars['Boolean']['input']>;
};

export type SpecOptionInput = {
  name: Scalars['String']['input'];
  value: Scalars['String']['input'];
};

export type StaffAccountFilter = {
  includeDisabled?: Scalars['Boolean']['input'];
  role?: InputMaybe<StaffRole>;
  /** Accounts acting on this store (head office included). */
  storeId?: InputMaybe<Scalars['ID']['input']>;
};

export type StaffAccountIdInput = {
  id: Scalars['ID']['input'];
};

export type StaffLoginInput = {
  password: Scalars['String']['input'];
  /** Required once the account has TOTP (TOTP_REQUIRED). */
  totpCode?: InputMaybe<Scalars['String']['input']>;
  username: Scalars['String']['input'];
};

export type StaffLogoutInput = {
  refreshToken: Scalars['String']['input'];
};

/** HQ_ADMIN, OPERATOR or STORE_MANAGER. */
export type StaffRole =
  | 'HQ_ADMIN'
  | 'OPERATOR'
  | 'STORE_MANAGER';

/** What a ledger row records. */
export type StockLedgerKind =
  | 'ADJUSTMENT'
  | 'CAMPAIGN_HOLD'
  | 'ORDER_HOLD'
  | 'RELEASE'
  | 'RESTOCK'
  | 'SALE';

/** What moved stock. */
export type StockMovementSource =
  | 'ADJUSTMENT'
  | 'CAMPAIGN_HOLD'
  | 'CAMPAIGN_RELEASE'
  | 'MINI_PROGRAM'
  | 'ORDER_HOLD'
  | 'ORDER_RELEASE'
  | 'POS'
  | 'RESTOCK'
  | 'TAKEAWAY';

/** Why a store cannot serve. */
export type StoreRefusalReason =
  | 'CLOSED'
  | 'OUTSIDE_HOURS'
  | 'OUT_OF_RANGE'
  | 'OUT_OF_STOCK'
  | 'SOLD_OUT';

export type Tier =
  | 'BLACK_DIAMOND'
  | 'GOLD'
  | 'NORMAL'
  | 'SILVER';

export type TrackEventsInput = {
  /** Signed out: whose events these are. Signed in: that device's earlier events become the member's. */
  deviceId?: InputMaybe<Scalars['String']['input']>;
  /** At most 50. */
  events: Array<BehaviourEventInput>;
};

export type UpdateCategoryInput = {
  id: Scalars['ID']['input'];
  name?: InputMaybe<Scalars['String']['input']>;
  /** null moves the category to the top level. */
  parentId?: InputMaybe<Scalars['ID']['input']>;
  sort?: InputMaybe<Scalars['Int']['input']>;
};

export type UpdateCouponTemplateInput = {
  claimEndsAt?: InputMaybe<Scalars['DateTime']['input']>;
  id: Scalars['ID']['input'];
  perMemberLimit?: InputMaybe<Scalars['Int']['input']>;
  /** Stop issuing it for good. */
  stop?: Scalars['Boolean']['input'];
  title?: InputMaybe<Scalars['String']['input']>;
  totalQuantity?: InputMaybe<Scalars['Int']['input']>;
};

export type UpdateKitchenStationInput = {
  /** true makes it the store's default station. */
  isDefault?: InputMaybe<Scalars['Boolean']['input']>;
  name?: InputMaybe<Scalars['String']['input']>;
  sort?: InputMaybe<Scalars['Int']['input']>;
  stationId: Scalars['ID']['input'];
};

export type UpdateOrderStatusInput = {
  orderId: Scalars['ID']['input'];
  status: OrderStatus;
};

export type UpdateProductInput = {
  categoryId?: InputMaybe<Scalars['ID']['input']>;
  channels?: InputMaybe<Array<Channel>>;
  description?: InputMaybe<Scalars['String']['input']>;
  id: Scalars['ID']['input'];
  imageUrls?: InputMaybe<Array<Scalars['String']['input']>>;
  name?: InputMaybe<Scalars['String']['input']>;
  sort?: InputMaybe<Scalars['Int']['input']>;
  tags?: InputMaybe<Array<Scalars['String']['input']>>;
};

export type UpdateProfileInput = {
  birthday?: InputMaybe<Scalars['Date']['input']>;
  nickname?: InputMaybe<Scalars['String']['input']>;
};

export type UpdateSkuInput = {
  components?: InputMaybe<Array<ComboComponentInput>>;
  id: Scalars['ID']['input'];
  name?: InputMaybe<Scalars['String']['input']>;
  priceFen?: InputMaybe<Scalars['Int']['input']>;
  specs?: InputMaybe<Array<SpecOptionInput>>;
};

export type UpdateStaffAccountInput = {
  displayName?: InputMaybe<Scalars['String']['input']>;
  id: Scalars['ID']['input'];
  role?: InputMaybe<StaffRole>;
  storeIds?: InputMaybe<Array<Scalars['ID']['input']>>;
};

/** The weather where the member is. */
export type Weather =
  | 'CLEAR'
  | 'CLOUDY'
  | 'COLD'
  | 'HOT'
  | 'RAIN'
  | 'SNOW';

export type SessionFragment = { token: string | null, refreshToken: string | null, member: { id: string, nickname: string, phone: string | null, tier: MemberTier } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> };

export type RequestLoginCodeMutationVariables = Exact<{
  phone: Scalars['String']['input'];
}>;


export type RequestLoginCodeMutation = { requestLoginCode: { errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type LoginWithSmsCodeMutationVariables = Exact<{
  phone: Scalars['String']['input'];
  code: Scalars['String']['input'];
  deviceId: InputMaybe<Scalars['String']['input']>;
}>;


export type LoginWithSmsCodeMutation = { login: { token: string | null, refreshToken: string | null, member: { id: string, nickname: string, phone: string | null, tier: MemberTier } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type LoginWithWechatMutationVariables = Exact<{
  code: Scalars['String']['input'];
  phoneCode: InputMaybe<Scalars['String']['input']>;
  deviceId: InputMaybe<Scalars['String']['input']>;
}>;


export type LoginWithWechatMutation = { loginWithWechat: { token: string | null, refreshToken: string | null, member: { id: string, nickname: string, phone: string | null, tier: MemberTier } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type BindWechatPhoneMutationVariables = Exact<{
  code: Scalars['String']['input'];
}>;


export type BindWechatPhoneMutation = { bindWechatPhone: { member: { id: string, phone: string | null } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type BindPhoneMutationVariables = Exact<{
  phone: Scalars['String']['input'];
  code: Scalars['String']['input'];
}>;


export type BindPhoneMutation = { bindPhone: { member: { id: string, phone: string | null } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type RefreshSessionMutationVariables = Exact<{
  refreshToken: Scalars['String']['input'];
}>;


export type RefreshSessionMutation = { refreshToken: { token: string | null, refreshToken: string | null, member: { id: string, nickname: string, phone: string | null, tier: MemberTier } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type LogoutMutationVariables = Exact<{
  refreshToken: Scalars['String']['input'];
}>;


export type LogoutMutation = { logout: { errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type BargainFieldsFragment = { id: string, status: BargainStatus, helpsNeeded: number, helpsDone: number, helpsLeft: number, expiresAt: string, version: number, shareCode: string | null, startPrice: { fen: number, display: string }, floorPrice: { fen: number, display: string }, price: { fen: number, display: string }, sku: { id: string, name: string } | null, store: { id: string, name: string } | null };

export type StartBargainMutationVariables = Exact<{
  campaignId: Scalars['ID']['input'];
  skuId: InputMaybe<Scalars['ID']['input']>;
  storeId: InputMaybe<Scalars['ID']['input']>;
}>;


export type StartBargainMutation = { startBargain: { bargain: { id: string, status: BargainStatus, helpsNeeded: number, helpsDone: number, helpsLeft: number, expiresAt: string, version: number, shareCode: string | null, startPrice: { fen: number, display: string }, floorPrice: { fen: number, display: string }, price: { fen: number, display: string }, sku: { id: string, name: string } | null, store: { id: string, name: string } | null } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type HelpBargainMutationVariables = Exact<{
  shareCode: Scalars['String']['input'];
}>;


export type HelpBargainMutation = { helpBargain: { cut: { fen: number, display: string } | null, bargain: { id: string, status: BargainStatus, helpsNeeded: number, helpsDone: number, helpsLeft: number, expiresAt: string, version: number, shareCode: string | null, startPrice: { fen: number, display: string }, floorPrice: { fen: number, display: string }, price: { fen: number, display: string }, sku: { id: string, name: string } | null, store: { id: string, name: string } | null } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type BuyBargainMutationVariables = Exact<{
  bargainId: Scalars['ID']['input'];
  order: InputMaybe<CampaignOrderInput>;
}>;


export type BuyBargainMutation = { buyBargain: { bargain: { id: string, status: BargainStatus } | null, order: { id: string, status: OrderStatus, payBy: string, total: { fen: number, display: string } } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type BargainQueryVariables = Exact<{
  id: Scalars['ID']['input'];
}>;


export type BargainQuery = { bargain: { id: string, status: BargainStatus, helpsNeeded: number, helpsDone: number, helpsLeft: number, expiresAt: string, version: number, shareCode: string | null, startPrice: { fen: number, display: string }, floorPrice: { fen: number, display: string }, price: { fen: number, display: string }, sku: { id: string, name: string } | null, store: { id: string, name: string } | null } | null };

export type CampaignCardFragment = { id: string, kind: CampaignKind, name: string, endsAt: string, channels: Array<Channel>, perMemberLimit: number, newMembersOnly: boolean, groupSize: number | null, bargainHelps: number | null, items: Array<{ price: { fen: number, display: string }, sku: { id: string, name: string, price: { fen: number, display: string }, product: { id: string, name: string, imageUrls: Array<string> } | null } | null }> };

export type StoreCampaignsQueryVariables = Exact<{
  storeId: Scalars['ID']['input'];
  kind: InputMaybe<CampaignKind>;
}>;


export type StoreCampaignsQuery = { campaigns: Array<{ quotaLeft: number | null, id: string, kind: CampaignKind, name: string, endsAt: string, channels: Array<Channel>, perMemberLimit: number, newMembersOnly: boolean, groupSize: number | null, bargainHelps: number | null, items: Array<{ price: { fen: number, display: string }, sku: { id: string, name: string, price: { fen: number, display: string }, product: { id: string, name: string, imageUrls: Array<string> } | null } | null }> }> };

export type ShareInviteQueryVariables = Exact<{
  shareCode: Scalars['String']['input'];
}>;


export type ShareInviteQuery = { shareInvite: { kind: CampaignKind, expiresAt: string, inviterNickname: string, campaign: { id: string, kind: CampaignKind, name: string, endsAt: string, channels: Array<Channel>, perMemberLimit: number, newMembersOnly: boolean, groupSize: number | null, bargainHelps: number | null, items: Array<{ price: { fen: number, display: string }, sku: { id: string, name: string, price: { fen: number, display: string }, product: { id: string, name: string, imageUrls: Array<string> } | null } | null }> } | null, group: { id: string, status: GroupBuyStatus, size: number, seatsTaken: number, seatsLeft: number, seatsPaid: number, expiresAt: string, version: number, shareCode: string | null, members: Array<{ nickname: string, isLeader: boolean, paid: boolean, joinedAt: string }>, store: { id: string, name: string } | null, sku: { id: string, name: string } | null } | null, bargain: { id: string, status: BargainStatus, helpsNeeded: number, helpsDone: number, helpsLeft: number, expiresAt: string, version: number, shareCode: string | null, startPrice: { fen: number, display: string }, floorPrice: { fen: number, display: string }, price: { fen: number, display: string }, sku: { id: string, name: string } | null, store: { id: string, name: string } | null } | null } };

export type QuoteCartQueryVariables = Exact<{
  input: QuoteOrderInput;
}>;


export type QuoteCartQuery = { quoteOrder: { placeable: boolean, distanceMeters: number | null, couponProblem: OrderCouponProblem | null, deliveryWaiver: DeliveryWaiver | null, storeProblem: StoreRefusalReason | null, store: { id: string, name: string } | null, lines: Array<{ quantity: number, problem: OrderLineProblem | null, unitPrice: { fen: number, display: string } | null, amount: { fen: number, display: string }, sku: { id: string, name: string, product: { id: string, name: string } | null } | null }>, subtotal: { fen: number, display: string }, tierDiscount: { fen: number, display: string }, couponDiscount: { fen: number, display: string }, deliveryFee: { fen: number, display: string }, deliveryDiscount: { fen: number, display: string }, packagingFee: { fen: number, display: string }, total: { fen: number, display: string }, storeRefusals: Array<{ reason: StoreRefusalReason, store: { id: string, name: string } | null }> } };

export type CouponsForCartQueryVariables = Exact<{
  cart: CartInput;
}>;


export type CouponsForCartQuery = { applicableCoupons: Array<{ onDelivery: boolean, reason: CouponInapplicableReason | null, coupon: { id: string, title: string, expiresAt: string }, saving: { fen: number, display: string } | null }> };

export type PlaceOrderMutationVariables = Exact<{
  input: PlaceOrderInput;
}>;


export type PlaceOrderMutation = { placeOrder: { replayed: boolean, order: { id: string, number: string, status: OrderStatus, channel: Channel, note: string, pickupCode: string | null, placedAt: string, payBy: string, paidAt: string | null, version: number, distanceMeters: number | null, store: { id: string, name: string, address: string } | null, lines: Array<{ lineId: number, name: string, quantity: number, refundedQuantity: number, specs: Array<{ name: string, value: string }>, unitPrice: { fen: number, display: string }, amount: { fen: number, display: string }, sku: { id: string } | null }>, subtotal: { fen: number, display: string }, tierDiscount: { fen: number, display: string }, couponDiscount: { fen: number, display: string }, deliveryFee: { fen: number, display: string }, deliveryDiscount: { fen: number, display: string }, packagingFee: { fen: number, display: string }, total: { fen: number, display: string }, refunded: { fen: number, display: string }, address: { detail: string, contactName: string, contactPhone: string } | null, coupon: { id: string, title: string } | null, refunds: Array<{ id: string, status: RefundStatus, reason: string, refusalReason: string | null, requestedAt: string, updatedAt: string, amount: { fen: number, display: string }, lines: Array<{ lineId: number, quantity: number }> }> } | null, storeRefusals: Array<{ reason: StoreRefusalReason, store: { id: string, name: string } | null }>, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type PayOrderMutationVariables = Exact<{
  orderId: Scalars['ID']['input'];
}>;


export type PayOrderMutation = { payOrder: { order: { id: string, status: OrderStatus, paidAt: string | null, pickupCode: string | null, version: number } | null, wechatPayment: { appId: string, timeStamp: string, nonceStr: string, package: string, signType: string, paySign: string } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type ProblemFragment = { code: ErrorCode, message: string, field: Array<string> | null };

export type PriceFragment = { fen: number, display: string };

export type CouponOfferFragment = { id: string, title: string, kind: CouponKind, percentOff: number, minTier: Tier, newMembersOnly: boolean, remaining: number, perMemberLimit: number, claimEndsAt: string | null, validUntil: string | null, validDays: number | null, fissionFriends: number | null, amountOff: { fen: number, display: string }, threshold: { fen: number, display: string }, cap: { fen: number, display: string } | null };

export type CouponCentreQueryVariables = Exact<{ [key: string]: never; }>;


export type CouponCentreQuery = { claimableCoupons: Array<{ id: string, title: string, kind: CouponKind, percentOff: number, minTier: Tier, newMembersOnly: boolean, remaining: number, perMemberLimit: number, claimEndsAt: string | null, validUntil: string | null, validDays: number | null, fissionFriends: number | null, amountOff: { fen: number, display: string }, threshold: { fen: number, display: string }, cap: { fen: number, display: string } | null }> };

export type ClaimCouponMutationVariables = Exact<{
  templateId: Scalars['ID']['input'];
  shareCode: InputMaybe<Scalars['String']['input']>;
}>;


export type ClaimCouponMutation = { claimCoupon: { coupon: { id: string, title: string, status: CouponStatus, validFrom: string, expiresAt: string, shareCode: string | null, template: { id: string, kind: CouponKind, percentOff: number, amountOff: { fen: number, display: string }, threshold: { fen: number, display: string }, cap: { fen: number, display: string } | null } } | null, bonus: { id: string, title: string } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type DeliveryTrackingQueryVariables = Exact<{
  orderId: Scalars['ID']['input'];
}>;


export type DeliveryTrackingQuery = { order: { id: string, status: OrderStatus, store: { id: string, name: string, location: { lat: number, lng: number } } | null, address: { location: { lat: number, lng: number } } | null, delivery: { id: string, status: DeliveryStatus, provider: DeliveryProvider, etaSeconds: number | null, positionAt: string | null, position: { lat: number, lng: number } | null, courier: { name: string, phone: string | null } | null } | null } | null };

export type CourierUpdatesSubscriptionVariables = Exact<{
  orderId: Scalars['ID']['input'];
}>;


export type CourierUpdatesSubscription = { courierUpdates: { version: number, status: DeliveryStatus | null, provider: DeliveryProvider | null, etaSeconds: number | null, position: { lat: number, lng: number } | null, courier: { name: string, phone: string | null } | null } };

export type ContactCourierMutationVariables = Exact<{
  deliveryId: Scalars['ID']['input'];
}>;


export type ContactCourierMutation = { contactCourier: { contact: { number: string, extension: string | null, expiresAt: string | null } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type BuyFlashSaleMutationVariables = Exact<{
  campaignId: Scalars['ID']['input'];
  order: InputMaybe<CampaignOrderInput>;
}>;


export type BuyFlashSaleMutation = { buyFlashSale: { order: { id: string, status: OrderStatus, payBy: string, total: { fen: number, display: string } } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type GroupFieldsFragment = { id: string, status: GroupBuyStatus, size: number, seatsTaken: number, seatsLeft: number, seatsPaid: number, expiresAt: string, version: number, shareCode: string | null, members: Array<{ nickname: string, isLeader: boolean, paid: boolean, joinedAt: string }>, store: { id: string, name: string } | null, sku: { id: string, name: string } | null };

export type CampaignOrderFragment = { id: string, status: OrderStatus, payBy: string, total: { fen: number, display: string } };

export type StartGroupBuyMutationVariables = Exact<{
  campaignId: Scalars['ID']['input'];
  order: InputMaybe<CampaignOrderInput>;
}>;


export type StartGroupBuyMutation = { startGroupBuy: { group: { id: string, status: GroupBuyStatus, size: number, seatsTaken: number, seatsLeft: number, seatsPaid: number, expiresAt: string, version: number, shareCode: string | null, members: Array<{ nickname: string, isLeader: boolean, paid: boolean, joinedAt: string }>, store: { id: string, name: string } | null, sku: { id: string, name: string } | null } | null, order: { id: string, status: OrderStatus, payBy: string, total: { fen: number, display: string } } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type JoinGroupBuyMutationVariables = Exact<{
  shareCode: Scalars['String']['input'];
  order: InputMaybe<CampaignOrderInput>;
}>;


export type JoinGroupBuyMutation = { joinGroupBuy: { group: { id: string, status: GroupBuyStatus, size: number, seatsTaken: number, seatsLeft: number, seatsPaid: number, expiresAt: string, version: number, shareCode: string | null, members: Array<{ nickname: string, isLeader: boolean, paid: boolean, joinedAt: string }>, store: { id: string, name: string } | null, sku: { id: string, name: string } | null } | null, order: { id: string, status: OrderStatus, payBy: string, total: { fen: number, display: string } } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type GroupBuyQueryVariables = Exact<{
  id: Scalars['ID']['input'];
}>;


export type GroupBuyQuery = { groupBuy: { id: string, status: GroupBuyStatus, size: number, seatsTaken: number, seatsLeft: number, seatsPaid: number, expiresAt: string, version: number, shareCode: string | null, members: Array<{ nickname: string, isLeader: boolean, paid: boolean, joinedAt: string }>, store: { id: string, name: string } | null, sku: { id: string, name: string } | null } | null };

export type GroupBuyUpdatesSubscriptionVariables = Exact<{
  groupId: Scalars['ID']['input'];
}>;


export type GroupBuyUpdatesSubscription = { groupBuyUpdates: { id: string, status: GroupBuyStatus, size: number, seatsTaken: number, seatsLeft: number, seatsPaid: number, expiresAt: string, version: number, shareCode: string | null, members: Array<{ nickname: string, isLeader: boolean, paid: boolean, joinedAt: string }>, store: { id: string, name: string } | null, sku: { id: string, name: string } | null } };

export type StockFieldsFragment = { available: number | null, soldOut: boolean, version: number };

export type MenuProductFragment = { id: string, name: string, kind: ProductKind, description: string, tags: Array<string>, imageUrls: Array<string>, skus: Array<{ id: string, name: string, specs: Array<{ name: string, value: string }>, price: { fen: number, display: string }, stock: { available: number | null, soldOut: boolean, version: number } | null }> };

export type StoreMenuQueryVariables = Exact<{
  storeId: Scalars['ID']['input'];
  channel: Channel;
}>;


export type StoreMenuQuery = { menu: { channel: Channel, store: { id: string, name: string, isOpen: boolean, openingHours: { opens: string, closes: string } }, categories: Array<{ id: string, name: string, products: Array<{ id: string, name: string, kind: ProductKind, description: string, tags: Array<string>, imageUrls: Array<string>, skus: Array<{ id: string, name: string, specs: Array<{ name: string, value: string }>, price: { fen: number, display: string }, stock: { available: number | null, soldOut: boolean, version: number } | null }> }> }> } | null };

export type StockFeedSubscriptionVariables = Exact<{
  storeId: Scalars['ID']['input'];
  skuIds: InputMaybe<Array<Scalars['ID']['input']> | Scalars['ID']['input']>;
}>;


export type StockFeedSubscription = { stockChanged: { available: number | null, soldOut: boolean, version: number, sku: { id: string } | null } };

export type OrderFieldsFragment = { id: string, number: string, status: OrderStatus, channel: Channel, note: string, pickupCode: string | null, placedAt: string, payBy: string, paidAt: string | null, version: number, distanceMeters: number | null, store: { id: string, name: string, address: string } | null, lines: Array<{ lineId: number, name: string, quantity: number, refundedQuantity: number, specs: Array<{ name: string, value: string }>, unitPrice: { fen: number, display: string }, amount: { fen: number, display: string }, sku: { id: string } | null }>, subtotal: { fen: number, display: string }, tierDiscount: { fen: number, display: string }, couponDiscount: { fen: number, display: string }, deliveryFee: { fen: number, display: string }, deliveryDiscount: { fen: number, display: string }, packagingFee: { fen: number, display: string }, total: { fen: number, display: string }, refunded: { fen: number, display: string }, address: { detail: string, contactName: string, contactPhone: string } | null, coupon: { id: string, title: string } | null, refunds: Array<{ id: string, status: RefundStatus, reason: string, refusalReason: string | null, requestedAt: string, updatedAt: string, amount: { fen: number, display: string }, lines: Array<{ lineId: number, quantity: number }> }> };

export type RefundFieldsFragment = { id: string, status: RefundStatus, reason: string, refusalReason: string | null, requestedAt: string, updatedAt: string, amount: { fen: number, display: string }, lines: Array<{ lineId: number, quantity: number }> };

export type MyOrdersQueryVariables = Exact<{
  status: InputMaybe<Array<OrderStatus> | OrderStatus>;
  first?: InputMaybe<Scalars['Int']['input']>;
  after: InputMaybe<Scalars['String']['input']>;
}>;


export type MyOrdersQuery = { viewer: { member: { id: string, orders: { edges: Array<{ node: { id: string, number: string, status: OrderStatus, channel: Channel, placedAt: string, total: { fen: number, display: string }, store: { id: string, name: string } | null } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } } | null } };

export type OrderDetailQueryVariables = Exact<{
  id: Scalars['ID']['input'];
}>;


export type OrderDetailQuery = { order: { id: string, number: string, status: OrderStatus, channel: Channel, note: string, pickupCode: string | null, placedAt: string, payBy: string, paidAt: string | null, version: number, distanceMeters: number | null, store: { id: string, name: string, address: string } | null, lines: Array<{ lineId: number, name: string, quantity: number, refundedQuantity: number, specs: Array<{ name: string, value: string }>, unitPrice: { fen: number, display: string }, amount: { fen: number, display: string }, sku: { id: string } | null }>, subtotal: { fen: number, display: string }, tierDiscount: { fen: number, display: string }, couponDiscount: { fen: number, display: string }, deliveryFee: { fen: number, display: string }, deliveryDiscount: { fen: number, display: string }, packagingFee: { fen: number, display: string }, total: { fen: number, display: string }, refunded: { fen: number, display: string }, address: { detail: string, contactName: string, contactPhone: string } | null, coupon: { id: string, title: string } | null, refunds: Array<{ id: string, status: RefundStatus, reason: string, refusalReason: string | null, requestedAt: string, updatedAt: string, amount: { fen: number, display: string }, lines: Array<{ lineId: number, quantity: number }> }> } | null };

export type OrderUpdatesSubscriptionVariables = Exact<{
  orderId: Scalars['ID']['input'];
}>;


export type OrderUpdatesSubscription = { orderUpdates: { id: string, number: string, status: OrderStatus, channel: Channel, note: string, pickupCode: string | null, placedAt: string, payBy: string, paidAt: string | null, version: number, distanceMeters: number | null, store: { id: string, name: string, address: string } | null, lines: Array<{ lineId: number, name: string, quantity: number, refundedQuantity: number, specs: Array<{ name: string, value: string }>, unitPrice: { fen: number, display: string }, amount: { fen: number, display: string }, sku: { id: string } | null }>, subtotal: { fen: number, display: string }, tierDiscount: { fen: number, display: string }, couponDiscount: { fen: number, display: string }, deliveryFee: { fen: number, display: string }, deliveryDiscount: { fen: number, display: string }, packagingFee: { fen: number, display: string }, total: { fen: number, display: string }, refunded: { fen: number, display: string }, address: { detail: string, contactName: string, contactPhone: string } | null, coupon: { id: string, title: string } | null, refunds: Array<{ id: string, status: RefundStatus, reason: string, refusalReason: string | null, requestedAt: string, updatedAt: string, amount: { fen: number, display: string }, lines: Array<{ lineId: number, quantity: number }> }> } };

export type CancelOrderMutationVariables = Exact<{
  orderId: Scalars['ID']['input'];
}>;


export type CancelOrderMutation = { updateOrderStatus: { order: { id: string, status: OrderStatus, version: number } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type RequestRefundMutationVariables = Exact<{
  input: RequestRefundInput;
}>;


export type RequestRefundMutation = { requestRefund: { refund: { id: string, status: RefundStatus, reason: string, refusalReason: string | null, requestedAt: string, updatedAt: string, amount: { fen: number, display: string }, lines: Array<{ lineId: number, quantity: number }> } | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type RecommendationsQueryVariables = Exact<{
  scene: RecommendationScene;
  storeId: InputMaybe<Scalars['ID']['input']>;
  channel?: Channel;
  productId: InputMaybe<Scalars['ID']['input']>;
  cart: InputMaybe<Array<Scalars['ID']['input']> | Scalars['ID']['input']>;
  context: InputMaybe<RecommendationContextInput>;
  deviceId: InputMaybe<Scalars['String']['input']>;
  first?: Scalars['Int']['input'];
}>;


export type RecommendationsQuery = { recommendations: Array<{ reason: string, reasonKind: RecommendationReasonKind, product: { id: string, name: string, tags: Array<string>, imageUrls: Array<string>, skus: Array<{ id: string, name: string, price: { fen: number, display: string } }> } }> };

export type SearchProductsQueryVariables = Exact<{
  query: Scalars['String']['input'];
  storeId: Scalars['ID']['input'];
  channel: Channel;
  first?: InputMaybe<Scalars['Int']['input']>;
  after: InputMaybe<Scalars['String']['input']>;
}>;


export type SearchProductsQuery = { searchProducts: { totalCount: number, pageInfo: { hasNextPage: boolean, endCursor: string | null }, edges: Array<{ matchedBy: SearchMatch, node: { id: string, name: string, kind: ProductKind, description: string, tags: Array<string>, imageUrls: Array<string>, skus: Array<{ id: string, name: string, specs: Array<{ name: string, value: string }>, price: { fen: number, display: string }, stock: { available: number | null, soldOut: boolean, version: number } | null }> } }> } };

export type SearchSuggestionsQueryVariables = Exact<{
  prefix: Scalars['String']['input'];
  first?: InputMaybe<Scalars['Int']['input']>;
}>;


export type SearchSuggestionsQuery = { searchSuggestions: Array<string> };

export type StoreCardFragment = { id: string, name: string, address: string, distanceMeters: number | null, isOpen: boolean, deliveryRadiusMeters: number, location: { lat: number, lng: number }, openingHours: { opens: string, closes: string } };

export type NearbyStoresQueryVariables = Exact<{
  lat: Scalars['Float']['input'];
  lng: Scalars['Float']['input'];
  first?: InputMaybe<Scalars['Int']['input']>;
  after: InputMaybe<Scalars['String']['input']>;
}>;


export type NearbyStoresQuery = { stores: { totalCount: number, edges: Array<{ node: { id: string, name: string, address: string, distanceMeters: number | null, isOpen: boolean, deliveryRadiusMeters: number, location: { lat: number, lng: number }, openingHours: { opens: string, closes: string } } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } };

export type TrackEventsMutationVariables = Exact<{
  input: TrackEventsInput;
}>;


export type TrackEventsMutation = { trackEvents: { accepted: number | null, duplicates: number | null, merged: number | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type MyBehaviourQueryVariables = Exact<{
  first?: Scalars['Int']['input'];
}>;


export type MyBehaviourQuery = { myBehaviour: Array<{ kind: BehaviourEventKind, query: string | null, occurredAt: string, product: { id: string, name: string } | null }> };

export type ClearMyBehaviourMutationVariables = Exact<{ [key: string]: never; }>;


export type ClearMyBehaviourMutation = { clearMyBehaviour: { cleared: number | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

export type WalletCouponFragment = { id: string, title: string, status: CouponStatus, validFrom: string, expiresAt: string, shareCode: string | null, template: { id: string, kind: CouponKind, percentOff: number, amountOff: { fen: number, display: string }, threshold: { fen: number, display: string }, cap: { fen: number, display: string } | null } };

export type WalletQueryVariables = Exact<{
  couponStatus?: InputMaybe<CouponStatus>;
  first?: InputMaybe<Scalars['Int']['input']>;
  after: InputMaybe<Scalars['String']['input']>;
}>;


export type WalletQuery = { viewer: { member: { id: string, nickname: string, phone: string | null, tier: MemberTier, points: number, benefits: { discountPercent: number, freeDelivery: boolean, birthdayCoupon: boolean, pointsMultiplier: number }, tierProgress: { current: MemberTier, next: MemberTier | null, spendToNextFen: number }, coupons: { edges: Array<{ node: { id: string, title: string, status: CouponStatus, validFrom: string, expiresAt: string, shareCode: string | null, template: { id: string, kind: CouponKind, percentOff: number, amountOff: { fen: number, display: string }, threshold: { fen: number, display: string }, cap: { fen: number, display: string } | null } } }>, pageInfo: { hasNextPage: boolean, endCursor: string | null } } } | null } };

export type CheckInMutationVariables = Exact<{ [key: string]: never; }>;


export type CheckInMutation = { checkIn: { streak: number | null, pointsEarned: number | null, balance: number | null, errors: Array<{ code: ErrorCode, message: string, field: Array<string> | null }> } };

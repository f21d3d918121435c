import { GatewayError } from '../../gateway/errors.ts';
import { personalIdAgreesWith } from '../../gateway/domain/index.ts';
import type { UpstreamCall } from '../../gateway/audit/entry.ts';
import type { ResilienceConfig } from '../../gateway/config/types.ts';
import { createUpstreamClient, type UpstreamObserver, type BreakerState } from '../shared/upstream-client.ts';
import { isoFromDmy, nativeShape, requireOption } from '../shared/native.ts';

export interface Address { street: string; commune: string; district: string; province: string }
export interface Relative { personalId: string; fullName: string }
/** The standard identity record (contract population.identity v1, before minimisation). */
export interface IdentityRecord {
  personalId: string;
  fullName: string;
  dateOfBirth: string;
  sex: 'male' | 'female';
  nationality: string;
  ethnicity: string;
  hometown: string;
  permanentAddress: Address;
  currentAddress: Address;
  lifeStatus: 'alive' | 'deceased';
  dateOfDeath?: string;
  father?: Relative;
  mother?: Relative;
  spouse?: Relative;
  source: { agency: 'population'; retrievedAt: string; reference: string };
}

export interface PopulationAdapter {
  readonly name: 'population';
  /** Looks up one citizen; SUBJECT_NOT_FOUND when the database has none. */
  getIdentity(personalId: string, trace?: UpstreamCall[]): Promise<IdentityRecord>;
  health(): Promise<{ up: boolean; breaker: BreakerState }>;
  breakerState(): BreakerState;
}

const address = { type: 'object', required: ['xaPhuong', 'tinhThanhPho'], properties: { chiTiet: { type: 'string' }, xaPhuong: { type: 'string' }, quanHuyen: { type: 'string' }, tinhThanhPho: { type: 'string' } } };
const relative = { type: ['object', 'null'], required: ['soDinhDanh', 'hoVaTen'], properties: { soDinhDanh: { type: 'string' }, hoVaTen: { type: 'string' } } };
interface NativeAddress { chiTiet?: string; xaPhuong: string; quanHuyen?: string; tinhThanhPho: string }
interface NativeRelative { soDinhDanh: string; hoVaTen: string }
interface NativeAnswer {
  maKetQua: string;
  maTraCuu: string;
  duLieu: {
    soDinhDanh: string; hoVaTen: string; ngaySinh: string; gioiTinh: 'Nam' | 'Nữ'; quocTich?: string; danToc?: string; queQuan?: string;
    noiThuongTru: NativeAddress; noiOHienTai?: NativeAddress; tinhTrang: 'CON_SONG' | 'DA_CHET'; ngayMat?: string | null;
    cha?: NativeRelative | null; me?: NativeRelative | null; voChong?: NativeRelative | null;
  };
}
const checkAnswer = nativeShape<NativeAnswer>('population', {
  type: 'object',
  required: ['maKetQua', 'maTraCuu', 'duLieu'],
  properties: {
    maKetQua: { const: '00' },
    maTraCuu: { type: 'string' },
    duLieu: {
      type: 'object',
      required: ['soDinhDanh', 'hoVaTen', 'ngaySinh', 'gioiTinh', 'noiThuongTru', 'tinhTrang'],
      properties: {
        soDinhDanh: { type: 'string' }, hoVaTen: { type: 'string', minLength: 1 }, ngaySinh: { type: 'string' },
        gioiTinh: { enum: ['Nam', 'Nữ'] }, quocTich: { type: 'string' }, danToc: { type: 'string' }, queQuan: { type: 'string' },
        noiThuongTru: address, noiOHienTai: address, tinhTrang: { enum: ['CON_SONG', 'DA_CHET'] },
        ngayMat: { type: ['string', 'null'] }, cha: relative, me: relative, voChong: relative,
      },
    },
  },
});

const toAddress = (a: NativeAddress): Address => ({ street: a.chiTiet ?? '', commune: a.xaPhuong, district: a.quanHuyen ?? '', province: a.tinhThanhPho });
const toRelative = (r: NativeRelative | null | undefined): Relative | undefined => (r ? { personalId: r.soDinhDanh, fullName: r.hoVaTen.normalize('NFC') } : undefined);

/** Maps the database's native answer to the standard record; an inconsistent answer is UPSTREAM_BAD_RESPONSE. */
export function mapIdentity(requestedId: string, body: unknown, retrievedAt: string): IdentityRecord {
  const { duLieu: d, maTraCuu } = checkAnswer(body);
  const sex = d.gioiTinh === 'Nam' ? 'male' : 'female';
  const dateOfBirth = isoFromDmy('population', d.ngaySinh);
  if (d.soDinhDanh !== requestedId) throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'population: answered about another citizen');
  if (!personalIdAgreesWith(d.soDinhDanh, dateOfBirth, sex)) throw new GatewayError('UPSTREAM_BAD_RESPONSE', 'population: id disagrees with birth year or sex');
  const record: IdentityRecord = {
    personalId: d.soDinhDanh,
    fullName: d.hoVaTen.normalize('NFC'),
    dateOfBirth,
    sex,
    nationality: d.quocTich ?? 'Việt Nam',
    ethnicity: d.danToc ?? '',
    hometown: d.queQuan ?? '',
    permanentAddress: toAddress(d.noiThuongTru),
    currentAddress: toAddress(d.noiOHienTai ?? d.noiThuongTru),
    lifeStatus: d.tinhTrang === 'CON_SONG' ? 'alive' : 'deceased',
    source: { agency: 'population', retrievedAt, reference: maTraCuu },
  };
  if (d.ngayMat) record.dateOfDeath = isoFromDmy('population', d.ngayMat);
  const father = toRelative(d.cha), mother = toRelative(d.me), spouse = toRelative(d.voChong);
  if (father) record.father = father;
  if (mother) record.mother = mother;
  if (spouse) record.spouse = spouse;
  return record;
}

export interface PopulationAdapterOptions { baseUrl: string; resilience: ResilienceConfig; observer?: UpstreamObserver }

/** The National Population Database behind the standard identity contract. */
export function createPopulationAdapter(options: PopulationAdapterOptions): PopulationAdapter {
  requireOption('population', 'baseUrl', typeof options?.baseUrl === 'string' && /^https?:\/\//.test(options.baseUrl));
  requireOption('population', 'resilience', typeof options.resilience?.timeoutMs === 'number');
  const client = createUpstreamClient({ agency: 'population', baseUrl: options.baseUrl, resilience: options.resilience, observer: options.observer });
  return {
    name: 'population',
    getIdentity(personalId, trace) {
      return client.call({
        operation: 'cong-dan/tra-cuu',
        idempotent: true,
        trace,
        request: { method: 'POST', url: '/api/v1/cong-dan/tra-cuu', data: { soDinhDanh: personalId } },
        interpret: (res) => {
          if (res.status === 404) throw new GatewayError('SUBJECT_NOT_FOUND', 'no citizen with this personal id');
          if (res.status !== 200) throw new GatewayError('UPSTREAM_BAD_RESPONSE', `population: HTTP ${res.status}`);
          return mapIdentity(personalId, res.data, new Date().toISOString());
        },
        referenceOf: (r) => r.source.reference,
      });
    },
    async health() {
      return { up: await client.probe('/api/v1/trang-thai'), breaker: client.breakerState() };
    },
    breakerState: client.breakerState,
  };
}

//! The search space as the user writes it: `--param fast=5:50`,
//! `--param slow=20:200:4`, `--param backtest.fill=next_open,signal_close`,
//! `--constraint "fast < slow"`; resolved against the settings into typed
//! values ([`Space`]) and enumerated as a grid or drawn at random.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use super::SearchError;

/// Grids larger than this are refused before anything runs: a typo such
/// as `0:1000000` should not start a week of work.
pub const MAX_COMBINATIONS: usize = 2_000_000;

/// One `--param` as written: a name and either a range or a list.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamSpec {
    /// The name as written (`fast`, or a key path such as `backtest.costs.percent`).
    pub name: String,
    /// What follows the `=`.
    pub values: SpecValues,
}

/// The right-hand side of a `--param`.
#[derive(Debug, Clone, PartialEq)]
pub enum SpecValues {
    /// `start:end[:step]`, both ends included.
    Range {
        /// First value, as written.
        start: String,
        /// Last value, as written (included when the step lands on it).
        end: String,
        /// Step, as written (whole-number settings default to 1).
        step: Option<String>,
    },
    /// `a,b,c`.
    List(Vec<String>),
}

impl ParamSpec {
    /// Parses `name=start:end[:step]` or `name=a,b,c`.
    pub fn parse(text: &str) -> Result<ParamSpec, SearchError> {
        let Some((name, rhs)) = text.split_once('=') else {
            return Err(SearchError::new(format!(
                "--param `{text}` is not NAME=START:END[:STEP] or NAME=A,B,C (e.g. fast=5:50, slow=20:200:4)"
            )));
        };
        let name = name.trim();
        let rhs = rhs.trim();
        if name.is_empty() || rhs.is_empty() {
            return Err(SearchError::new(format!(
                "--param `{text}` needs a name and values, like fast=5:50"
            )));
        }
        let values = if rhs.contains(':') {
            let parts: Vec<&str> = rhs.split(':').map(str::trim).collect();
            match parts.as_slice() {
                [a, b] if !a.is_empty() && !b.is_empty() => SpecValues::Range {
                    start: a.to_string(),
                    end: b.to_string(),
                    step: None,
                },
                [a, b, c] if !a.is_empty() && !b.is_empty() && !c.is_empty() => SpecValues::Range {
                    start: a.to_string(),
                    end: b.to_string(),
                    step: Some(c.to_string()),
                },
                _ => {
                    return Err(SearchError::new(format!(
                        "--param `{text}`: a range is START:END or START:END:STEP"
                    )))
                }
            }
        } else {
            let items: Vec<String> = rhs.split(',').map(|s| s.trim().to_string()).collect();
            if items.iter().any(String::is_empty) {
                return Err(SearchError::new(format!(
                    "--param `{text}`: an empty value in the list"
                )));
            }
            SpecValues::List(items)
        };
        Ok(ParamSpec {
            name: name.to_string(),
            values,
        })
    }
}

/// The type a setting has, read from its current value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number (bars, periods, counts).
    Whole,
    /// A number with a fraction.
    Number,
    /// true or false.
    Flag,
    /// A name from a fixed set (`next_open`, `fraction_of_equity`, ...).
    Text,
}

impl Kind {
    /// The kind of a setting whose current value is `v`.
    pub fn of(v: &Value) -> Option<Kind> {
        match v {
            Value::Number(n) if n.is_u64() || n.is_i64() => Some(Kind::Whole),
            Value::Number(_) => Some(Kind::Number),
            Value::Bool(_) => Some(Kind::Flag),
            Value::String(_) => Some(Kind::Text),
            _ => None,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Kind::Whole => "a whole number",
            Kind::Number => "a number",
            Kind::Flag => "true or false",
            Kind::Text => "a name",
        }
    }
}

/// A parameter resolved against the settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Param {
    /// The name as the user wrote it (what tables and constraints use).
    pub name: String,
    /// The full settings key it sets (`strategies.sma_crossover.fast`).
    pub key: String,
    /// Its type.
    pub kind: Kind,
    /// The values a grid takes, in order.
    pub values: Vec<Value>,
    /// For a number range without a step under random search: draw
    /// uniformly from `[lo, hi]` instead of from `values`.
    pub continuous: Option<(f64, f64)>,
}

fn parse_as(kind: Kind, name: &str, raw: &str) -> Result<Value, SearchError> {
    let wrong = || {
        SearchError::new(format!(
            "--param {name}: `{raw}` is not {} (the setting is {})",
            kind.words(),
            kind.words()
        ))
    };
    Ok(match kind {
        Kind::Whole => Value::from(raw.parse::<i64>().map_err(|_| wrong())?),
        Kind::Number => {
            let x: f64 = raw.parse().map_err(|_| wrong())?;
            if !x.is_finite() {
                return Err(wrong());
            }
            Value::from(x)
        }
        Kind::Flag => Value::Bool(raw.parse::<bool>().map_err(|_| wrong())?),
        Kind::Text => Value::String(raw.to_string()),
    })
}

impl Param {
    /// Resolves `spec` as setting `key` of type `kind`.
    pub fn resolve(spec: &ParamSpec, key: String, kind: Kind, random: bool) -> Result<Param, SearchError> {
        let name = spec.name.as_str();
        let (values, continuous) = match &spec.values {
            SpecValues::List(items) => {
                let mut values = Vec::new();
                for raw in items {
                    let v = parse_as(kind, name, raw)?;
                    if !values.contains(&v) {
                        values.push(v);
                    }
                }
                (values, None)
            }
            SpecValues::Range { start, end, step } => match kind {
                Kind::Flag | Kind::Text => {
                    return Err(SearchError::new(format!(
                    "--param {name}: the setting is {}, which has no range; list the values instead (e.g. {name}={})",
                    kind.words(),
                    if kind == Kind::Flag { "true,false" } else { "a,b" }
                )))
                }
                Kind::Whole => {
                    let a = parse_as(kind, name, start)?.as_i64().unwrap_or_default();
                    let b = parse_as(kind, name, end)?.as_i64().unwrap_or_default();
                    let s = match step {
                        Some(s) => parse_as(kind, name, s)?.as_i64().unwrap_or_default(),
                        None => 1,
                    };
                    if s <= 0 {
                        return Err(SearchError::new(format!("--param {name}: the step must be above 0")));
                    }
                    if b < a {
                        return Err(SearchError::new(format!(
                            "--param {name}: the range {a}:{b} is empty (the end comes before the start)"
                        )));
                    }
                    let n = b.checked_sub(a).map_or(usize::MAX, |span| (span / s) as usize + 1);
                    if n > MAX_COMBINATIONS {
                        return Err(SearchError::new(format!("--param {name}: {n} values is too many")));
                    }
                    ((0..n as i64).map(|i| Value::from(a + i * s)).collect(), None)
                }
                Kind::Number => {
                    let a = parse_as(kind, name, start)?.as_f64().unwrap_or_default();
                    let b = parse_as(kind, name, end)?.as_f64().unwrap_or_default();
                    if b < a {
                        return Err(SearchError::new(format!(
                            "--param {name}: the range {a}:{b} is empty (the end comes before the start)"
                        )));
                    }
                    match step {
                        Some(s) => {
                            let s = parse_as(kind, name, s)?.as_f64().unwrap_or_default();
                            if s <= 0.0 {
                                return Err(SearchError::new(format!("--param {name}: the step must be above 0")));
                            }
                            // Counted, not accumulated, so 0.1 steps do not drift past the end.
                            let n = ((b - a) / s + 1e-9).floor() as usize + 1;
                            if n > MAX_COMBINATIONS {
                                return Err(SearchError::new(format!("--param {name}: {n} values is too many")));
                            }
                            ((0..n).map(|i| Value::from(a + i as f64 * s)).collect(), None)
                        }
                        None if random => (vec![Value::from(a), Value::from(b)], Some((a, b))),
                        None => {
                            return Err(SearchError::new(format!(
                                "--param {name}: a grid over a number needs a step (e.g. {name}={start}:{end}:0.01), or use --method random"
                            )))
                        }
                    }
                }
            },
        };
        Ok(Param {
            name: spec.name.clone(),
            key,
            kind,
            values,
            continuous,
        })
    }
}

/// A comparison operator of a constraint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

/// One side of a constraint: a parameter (by position) or a number.
#[derive(Debug, Clone, PartialEq)]
enum Operand {
    Param(usize),
    Number(f64),
}

/// A `--constraint "fast < slow"`: two operands and a comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Constraint {
    text: String,
    left: Operand,
    op: Op,
    right: Operand,
}

impl Constraint {
    /// Parses `A OP B`, where A and B are parameter names or numbers and OP
    /// one of `< <= > >= == !=`.
    pub fn parse(text: &str, params: &[Param]) -> Result<Constraint, SearchError> {
        // Longest operators first, so `<=` is not read as `<`.
        let ops = [
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<", Op::Lt),
            (">", Op::Gt),
        ];
        let found = ops
            .iter()
            .find_map(|(s, op)| text.split_once(s).map(|(l, r)| (l, *op, r)));
        let Some((l, op, r)) = found else {
            return Err(SearchError::new(format!(
                "--constraint `{text}` is not A OP B with OP one of < <= > >= == != (e.g. \"fast < slow\")"
            )));
        };
        let operand = |side: &str| -> Result<Operand, SearchError> {
            let side = side.trim();
            if let Some(i) = params.iter().position(|p| p.name == side || p.key == side) {
                return Ok(Operand::Param(i));
            }
            side.parse::<f64>().map(Operand::Number).map_err(|_| {
                SearchError::new(format!(
                    "--constraint `{text}`: `{side}` is neither a searched parameter ({}) nor a number",
                    params.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")
                ))
            })
        };
        Ok(Constraint {
            text: text.trim().to_string(),
            left: operand(l)?,
            op,
            right: operand(r)?,
        })
    }

    /// As written.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `values` (one per parameter) satisfy it. Names and flags
    /// compare only with `==` and `!=`.
    pub fn holds(&self, values: &[Value]) -> bool {
        let get = |o: &Operand| match o {
            Operand::Param(i) => values[*i].clone(),
            Operand::Number(x) => Value::from(*x),
        };
        let (a, b) = (get(&self.left), get(&self.right));
        match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => match self.op {
                Op::Lt => x < y,
                Op::Le => x <= y,
                Op::Gt => x > y,
                Op::Ge => x >= y,
                Op::Eq => x == y,
                Op::Ne => x != y,
            },
            _ => match self.op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                _ => false,
            },
        }
    }
}

/// How combinations are chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Every combination of the values.
    Grid,
    /// `trials` distinct combinations drawn with `seed`.
    Random {
        /// How many.
        trials: usize,
        /// The draw's seed.
        seed: u64,
    },
}

/// The resolved search: parameters, constraints and method.
#[derive(Debug, Clone, PartialEq)]
pub struct Space {
    /// The parameters, in the order written.
    pub params: Vec<Param>,
    /// Every constraint a combination must satisfy.
    pub constraints: Vec<Constraint>,
    /// Grid or random.
    pub method: Method,
}

impl Space {
    fn admits(&self, values: &[Value]) -> bool {
        self.constraints.iter().all(|c| c.holds(values))
    }

    /// The combinations to run, in a fixed order: the grid's (the first
    /// parameter varies slowest), or the random draw's. An empty result
    /// is an error naming what emptied it.
    pub fn combinations(&self) -> Result<Vec<Vec<Value>>, SearchError> {
        let sizes: Vec<usize> = self.params.iter().map(|p| p.values.len()).collect();
        let total = sizes.iter().try_fold(1usize, |acc, &n| acc.checked_mul(n));
        let continuous = self.params.iter().any(|p| p.continuous.is_some());
        let huge = total.is_none_or(|t| t > MAX_COMBINATIONS);
        let out = match self.method {
            // Too many to list: draw combinations directly instead.
            Method::Random { trials, seed } if continuous || huge => self.draw(trials, seed),
            _ => {
                let total = match total {
                    Some(t) if t <= MAX_COMBINATIONS => t,
                    _ => {
                        return Err(SearchError::new(format!(
                            "the grid has more than {MAX_COMBINATIONS} combinations; narrow the ranges, take larger steps, or use --method random --trials N"
                        )))
                    }
                };
                let mut grid = Vec::new();
                let mut values = Vec::with_capacity(sizes.len());
                for mut flat in 0..total {
                    values.clear();
                    let mut idx = vec![0; sizes.len()];
                    for (d, &n) in sizes.iter().enumerate().rev() {
                        idx[d] = flat % n;
                        flat /= n;
                    }
                    values.extend(idx.iter().zip(&self.params).map(|(&i, p)| p.values[i].clone()));
                    if self.admits(&values) {
                        grid.push(values.clone());
                    }
                }
                match self.method {
                    Method::Grid => grid,
                    Method::Random { trials, seed } => sample(grid, trials, seed),
                }
            }
        };
        if out.is_empty() {
            let why = if self.constraints.is_empty() {
                "the ranges hold no values".to_string()
            } else {
                format!(
                    "no combination satisfies {}",
                    self.constraints
                        .iter()
                        .map(|c| format!("`{}`", c.text))
                        .collect::<Vec<_>>()
                        .join(" and ")
                )
            };
            return Err(SearchError::new(format!(
                "the search is empty: {why}; widen the ranges or loosen the constraints"
            )));
        }
        Ok(out)
    }

    /// `trials` distinct combinations drawn one value per parameter (fewer
    /// when the constraints reject nearly everything).
    fn draw(&self, trials: usize, seed: u64) -> Vec<Vec<Value>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut out: Vec<Vec<Value>> = Vec::with_capacity(trials);
        let mut attempts = 0usize;
        while out.len() < trials {
            attempts += 1;
            if attempts > trials.saturating_mul(1000).max(10_000) {
                break;
            }
            let values: Vec<Value> = self
                .params
                .iter()
                .map(|p| match p.continuous {
                    Some((lo, hi)) => Value::from(lo + rng.random::<f64>() * (hi - lo)),
                    None => p.values[rng.random_range(0..p.values.len())].clone(),
                })
                .collect();
            if self.admits(&values) && !out.contains(&values) {
                out.push(values);
            }
        }
        out
    }
}

/// `trials` distinct members of `grid` drawn with `seed`, in grid order
/// (all of it when it is smaller).
fn sample(grid: Vec<Vec<Value>>, trials: usize, seed: u64) -> Vec<Vec<Value>> {
    if trials >= grid.len() {
        return grid;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut picked: Vec<usize> = rand::seq::index::sample(&mut rng, grid.len(), trials).into_vec();
    picked.sort_unstable();
    picked.into_iter().map(|i| grid[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole(name: &str, key: &str, spec: &str) -> Param {
        Param::resolve(
            &ParamSpec::parse(&format!("{name}={spec}")).unwrap(),
            key.into(),
            Kind::Whole,
            false,
        )
        .unwrap()
    }

    #[test]
    fn the_issues_sma_grid_has_1980_combinations() {
        let space = Space {
            params: vec![whole("fast", "s.fast", "5:50"), whole("slow", "s.slow", "20:200:4")],
            constraints: vec![],
            method: Method::Grid,
        };
        let mut space = space;
        space.constraints = vec![Constraint::parse("fast < slow", &space.params).unwrap()];
        let grid = space.combinations().unwrap();
        assert_eq!(grid.len(), 1980);
        assert_eq!(grid[0], vec![Value::from(5), Value::from(20)]);
        assert_eq!(grid.last().unwrap(), &vec![Value::from(50), Value::from(200)]);
        assert!(grid.iter().all(|c| c[0].as_i64() < c[1].as_i64()));
    }

    #[test]
    fn random_search_draws_distinct_combinations_reproducibly() {
        let params = vec![whole("fast", "s.fast", "5:50"), whole("slow", "s.slow", "20:200:4")];
        let c = Constraint::parse("fast<slow", &params).unwrap();
        let space = |seed| Space {
            params: params.clone(),
            constraints: vec![c.clone()],
            method: Method::Random { trials: 50, seed },
        };
        let a = space(1).combinations().unwrap();
        assert_eq!(a.len(), 50);
        assert_eq!(a, space(1).combinations().unwrap());
        assert_ne!(a, space(2).combinations().unwrap());
        let mut d = a.clone();
        d.dedup();
        assert_eq!(d.len(), 50);
    }

    #[test]
    fn a_grid_too_large_to_list_is_refused_but_can_be_sampled() {
        let params = vec![
            whole("a", "s.a", "1:2000"),
            whole("b", "s.b", "1:2000"),
            whole("c", "s.c", "1:2000"),
        ];
        let grid = Space {
            params: params.clone(),
            constraints: vec![],
            method: Method::Grid,
        };
        assert!(grid.combinations().unwrap_err().to_string().contains("--method random"));
        let random = Space {
            params,
            constraints: vec![],
            method: Method::Random { trials: 20, seed: 3 },
        };
        assert_eq!(random.combinations().unwrap().len(), 20);
        let huge = ParamSpec::parse("a=-9223372036854775807:9223372036854775807").unwrap();
        assert!(Param::resolve(&huge, "k".into(), Kind::Whole, false)
            .unwrap_err()
            .to_string()
            .contains("too many"));
    }

    #[test]
    fn ranges_lists_and_types_are_checked_with_clear_errors() {
        let err = |text: &str, kind: Kind| {
            ParamSpec::parse(text)
                .and_then(|s| Param::resolve(&s, "k".into(), kind, false))
                .unwrap_err()
                .to_string()
        };
        assert!(err("fast", Kind::Whole).contains("NAME=START:END"));
        assert!(err("fast=0.5:3", Kind::Whole).contains("`0.5` is not a whole number"));
        assert!(err("fast=9:3", Kind::Whole).contains("is empty"));
        assert!(err("fast=1:3:0", Kind::Whole).contains("step must be above 0"));
        assert!(err("allow_short=1:3", Kind::Flag).contains("list the values"));
        assert!(err("allow_short=yes", Kind::Flag).contains("true or false"));
        assert!(err("threshold=0:0.1", Kind::Number).contains("needs a step"));
        let floats = Param::resolve(
            &ParamSpec::parse("t=0:0.3:0.1").unwrap(),
            "k".into(),
            Kind::Number,
            false,
        )
        .unwrap();
        assert_eq!(floats.values.len(), 4);
        let params = vec![whole("fast", "s.fast", "5:6")];
        assert!(Constraint::parse("fast ~ 3", &params)
            .unwrap_err()
            .to_string()
            .contains("OP one of"));
        assert!(Constraint::parse("fast < slow", &params)
            .unwrap_err()
            .to_string()
            .contains("neither a searched parameter (fast)"));
        let space = Space {
            params: params.clone(),
            constraints: vec![Constraint::parse("fast > 10", &params).unwrap()],
            method: Method::Grid,
        };
        assert!(space
            .combinations()
            .unwrap_err()
            .to_string()
            .contains("no combination satisfies `fast > 10`"));
    }
}

//! Steps 1 to 3: the input files read once and validated (through a mapping file when one is
//! given), whether a job may start from them, and their plan with the fingerprint a job is
//! known by.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::intake::mapping::Mapping;
use crate::job;
use crate::journal::InputFile;
use crate::plan::{Inputs, Plan, RowIn};
use crate::schema::Kind;

use super::Error;

/// The inputs as read and validated: every file once.
pub struct Read {
    pub inputs: Inputs,
    rows: Vec<RowIn>,
}

/// The mapping file given with `--map`, read once and checked; one at fault is refused naming
/// its line. Its text is what the rows are mapped with and what a job records.
pub fn load_mapping(path: Option<&Path>) -> Result<Option<Arc<Mapping>>, Error> {
    path.map(|p| {
        Mapping::load(p)
            .map(Arc::new)
            .map_err(|e| Error::Input(e.to_string()))
    })
    .transpose()
}

/// Reads and validates `files` (`kind`: what a CSV file holds, when its headers do not say),
/// each through `mapping` when one is given: the mapping is then one of the inputs.
pub fn read(files: &[PathBuf], kind: Option<Kind>, mapping: Option<Arc<Mapping>>) -> Read {
    let (inputs, rows) = crate::plan::read(files, kind, mapping);
    Read { inputs, rows }
}

/// Whether the input lets a job start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Go,
    /// A file or sheet could not be read ([`Inputs::unreadable`] says which and why).
    Unreadable,
    /// This many errors in the input, and invalid rows are not to be skipped.
    Invalid(u64),
}

impl Read {
    /// Errors in the input, unreadable files counted.
    pub fn errors(&self) -> u64 {
        self.inputs.errors()
    }

    /// Whether a job may start from this input; `skip_invalid` runs the valid rows and records
    /// the others as invalid.
    pub fn verdict(&self, skip_invalid: bool) -> Verdict {
        if !self.inputs.unreadable.is_empty() {
            Verdict::Unreadable
        } else if self.errors() > 0 && !skip_invalid {
            Verdict::Invalid(self.errors())
        } else {
            Verdict::Go
        }
    }

    /// The rows' work, planned.
    pub fn plan(self) -> Planned {
        let plan = crate::plan::build(&self.inputs, self.rows);
        crate::failpoint::reached(crate::failpoint::Place::Read);
        Planned {
            inputs: self.inputs,
            plan,
        }
    }
}

/// The inputs and their plan.
pub struct Planned {
    pub inputs: Inputs,
    pub plan: Plan,
}

/// The inputs as a job records them, and the one string it is known by.
#[derive(Debug, Clone)]
pub struct Fingerprint {
    pub files: Vec<InputFile>,
    pub text: String,
}

impl Planned {
    /// The inputs' fingerprint, of the bytes their rows were read from (never a second read:
    /// a file saved meanwhile would give its digest to the other file's rows).
    pub fn fingerprint(&self) -> Result<Fingerprint, Error> {
        let files = self
            .inputs
            .fingerprint()
            .map_err(|e| Error::Input(e.to_string()))?;
        let text = job::fingerprint_of(&files);
        Ok(Fingerprint { files, text })
    }
}

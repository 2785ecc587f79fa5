//! `retail-api predict`: offline batch scoring with an artifact, of local files or S3 objects.
//! Inputs are transaction lines (scored per basket), CSV rows of the model's record fields, or
//! JSON lines of `/predict` bodies ([`format`]); each chunk of records is scored by the server's
//! scoring module ([`chunks`]); results go out as CSV or JSON lines ([`sink`]) to stdout, a file,
//! an object, or one output per input under a folder or prefix ([`location`]).

mod chunks;
mod format;
mod location;
mod number;
mod s3;
mod sink;

use std::path::Path;

use anyhow::{Context, bail};
use clap::Args;
use retail_model::artifact::Artifact;
use retail_server::scoring;

use format::{InputFormat, OutputFormat};
use location::{Clients, Input, Location, Output, Shard};
use sink::Sink;

/// `retail-api predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// Model: an artifact directory or `.tar.gz` (default: the embedded model).
    #[arg(long, env = "RETAIL_MODEL")]
    model: Option<std::path::PathBuf>,
    /// Input: a file, a directory (its files), `s3://bucket/key`, or `s3://bucket/prefix/` (every
    /// object under it). Transaction lines, CSV rows of the model's fields, or JSON lines.
    #[arg(long, env = "RETAIL_PREDICT_INPUT")]
    input: String,
    /// Input format (default: from the extension and the first line).
    #[arg(long, value_enum, env = "RETAIL_PREDICT_FORMAT")]
    format: Option<InputFormat>,
    /// Output (default: stdout): a file or `s3://bucket/key`, or a folder (`dir/`,
    /// `s3://bucket/prefix/`) for one output per input file, named after it.
    #[arg(long, env = "RETAIL_PREDICT_OUT")]
    out: Option<String>,
    /// Output format (default: from `--out`'s extension, else CSV for CSV input and JSON lines for
    /// JSON lines).
    #[arg(long, value_enum, env = "RETAIL_PREDICT_OUTPUT_FORMAT")]
    output_format: Option<OutputFormat>,
    /// Score only shard i of N (0-based): the i-th of every N input files in sorted order, so N
    /// processes with i = 0…N-1 together score every file once (`JOB_COMPLETION_INDEX/N`).
    #[arg(long, value_name = "i/N", env = "RETAIL_PREDICT_SHARD")]
    shard: Option<Shard>,
    /// Replace `--out` if it exists (local files; S3 objects are always replaced).
    #[arg(long, env = "RETAIL_FORCE")]
    force: bool,
    /// Explain each prediction (exact TreeSHAP, in the model's margin space): JSON lines get
    /// `explanation` as `?explain=true` answers have it; CSV rows get `BASE_<class>` and
    /// `C_<class>_<field>` columns (`BASE` and `C_<field>` for a regression), base + Σ
    /// contributions = the margin. Fails for a model without `explain.json`.
    #[arg(long, env = "RETAIL_PREDICT_EXPLAIN")]
    explain: bool,
}

/// Where results go: one output for everything, or one per input under a folder.
struct Outputs<'a> {
    args: &'a PredictArgs,
    artifact: &'a Artifact,
    out: Option<Location>,
    folder: bool,
    format: Option<OutputFormat>,
    failed: usize,
    scored: usize,
}

impl Outputs<'_> {
    /// Opens the output of `input` (everything's, when `input` is `None` or the output is one).
    fn open(
        &self,
        clients: &mut Clients,
        input: Option<&Input>,
        natural: OutputFormat,
    ) -> anyhow::Result<(Output, Sink)> {
        let format = self.format.unwrap_or(natural);
        let location = match (&self.out, input) {
            (Some(folder), Some(input)) if self.folder => Some(location::output_in(folder, input, format.extension())),
            (out, _) => out.clone(),
        };
        if let Some(Location::Local(path)) = &location {
            create_parent(path, self.folder)?;
        }
        let mut output = clients.create(location.as_ref(), self.args.force)?;
        let sink = Sink::new(format, self.artifact, self.args.explain)?;
        sink.header(output.writer()).context("cannot write predictions")?;
        Ok((output, sink))
    }

    /// Finishes an output, counting its records.
    fn close(&mut self, (output, sink): (Output, Sink)) -> anyhow::Result<()> {
        self.failed += sink.failed;
        self.scored += sink.scored;
        output.commit()
    }
}

/// Makes the directories an output file under an output folder goes into.
fn create_parent(path: &Path, folder: bool) -> anyhow::Result<()> {
    match path.parent() {
        Some(parent) if folder && !parent.as_os_str().is_empty() => {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))
        }
        _ => Ok(()),
    }
}

pub fn predict(args: &PredictArgs) -> anyhow::Result<()> {
    let input = Location::parse(&args.input)?;
    let out = args.out.as_deref().map(Location::parse).transpose()?;
    let folder = out.as_ref().is_some_and(Location::is_folder);
    if let (Some(Location::Local(path)), false) = (&out, folder) {
        crate::output::check_file(path, args.force)?;
    }
    let named = if folder { None } else { args.out.as_deref().and_then(OutputFormat::of_name) };
    let artifact = match &args.model {
        Some(path) => Artifact::load(path).with_context(|| format!("cannot load model {}", path.display()))?,
        None => Artifact::embedded_default().context("cannot load the embedded default model")?,
    };
    if args.explain {
        scoring::Explaining::of(&artifact).context("--explain")?;
    }
    let mut outputs =
        Outputs { args, artifact: &artifact, out, folder, format: args.output_format.or(named), failed: 0, scored: 0 };
    let mut clients = Clients::default();
    let inputs = location::shard(clients.inputs(&input)?, args.shard);
    let mut single = None;
    for input in &inputs {
        let reader = clients.open(input)?;
        let mut current = if folder { None } else { single.take() };
        chunks::score_input(
            chunks::Model { artifact: &artifact, explain: args.explain },
            &input.name,
            reader,
            args.format,
            &mut |format, rows| {
                let (output, sink) = match &mut current {
                    Some(open) => open,
                    None => current.insert(outputs.open(&mut clients, Some(input), format.natural_output())?),
                };
                sink.write(output.writer(), &input.name, &rows).context("cannot write predictions")
            },
        )?;
        match current {
            Some(open) if folder => outputs.close(open)?,
            other => single = other,
        }
    }
    if !folder {
        let open = match single {
            Some(open) => open,
            None => outputs.open(&mut clients, None, OutputFormat::Csv)?,
        };
        outputs.close(open)?;
    }
    eprintln!("scored {} record(s) of {} input file(s); {} failed", outputs.scored, inputs.len(), outputs.failed);
    if outputs.failed > 0 {
        bail!("{} input row(s) could not be scored; their errors are in the output", outputs.failed);
    }
    Ok(())
}

# The image every Airflow service of docker-compose.yaml runs: Airflow's official image at the
# version requirements.txt pins, this project's pinned requirements, and the migration library
# installed as a package, because the triggerer imports trigger classes from outside the DAG bundle
# (Airflow issue #65455). dags/, plugins/ and include/ are mounted by docker-compose.yaml.
FROM apache/airflow:3.3.2-python3.11

WORKDIR /opt/kkp-cni-migration
COPY requirements.txt constraints.txt ./
RUN pip install --no-cache-dir -r requirements.txt -c constraints.txt "setuptools>=70.1"

# pyproject.toml names README.md as the package's readme, so the build needs it.
COPY pyproject.toml README.md ./
COPY include/kkp_migration ./include/kkp_migration
RUN pip install --no-cache-dir --no-deps --no-build-isolation .
WORKDIR /opt/airflow

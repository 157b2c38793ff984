-- Smoke test of the vector type: literals, typmod, distances.
CREATE EXTENSION genai;
SELECT '[1,2,3]'::vector;
SELECT '[1.5, -2e-3 , 3.4e38]'::vector(3);
SELECT '[1,2]'::vector(3);
SELECT '[1,NaN]'::vector;
SELECT '[]'::vector;
SELECT '[1,2'::vector;
SELECT '[1,2,3]'::vector <-> '[4,5,6]';
SELECT '[1,2,3]'::vector <#> '[4,5,6]';
SELECT '[1,2,3]'::vector <=> '[4,5,6]';
SELECT '[1,2,3]'::vector <+> '[4,5,6]';
SELECT '[1,2,3]'::vector <-> '[4,5]';
SELECT vector_dims('[1,2,3]'), vector_norm('[3,4]');
